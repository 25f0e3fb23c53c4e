// Task evaluation as lm-evaluation-harness does it, for the built-in suite (train/tasks.h)
// and for user files in JSONL, one item a line:
//   multiple choice  {"context": "...", "choices": ["...", ...], "gold": i}   (optional
//                    "delimiter", default " ": put between the context and every choice)
//                    -> acc (argmax of log p(delimiter + choice | context)) and acc_norm (argmax
//                       of that log-likelihood divided by the choice's UTF-8 byte length)
//   generative       {"prompt": "...", "answer": "...", "stop": "\n"}   (optional "stop" as a
//                    string or a list, default "\n"; "max_tokens", default 32; "answer_after":
//                    a marker, the prediction being the text after its last occurrence)
//                    -> exact match of the greedy prediction (both sides trimmed of blanks)
// Every model sees its input as a document start: the EOS id, then the text (as in training).
// Every accuracy comes with the 95% confidence interval of a binomial proportion (normal
// approximation, 1.96 standard errors), as lm-evaluation-harness prints its stderr.
// Deliberately not here: the generators (train/tasks.h), the command line (cli/cmd_eval.cpp).
#pragma once
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "infer/pack.h"
#include "io/json.h"
#include "io/tokenizer.h"
#include "nn/model.h"
#include "train/tasks.h"

namespace razor {

// What evaluation needs of a model: log-likelihoods and greedy generation, on text.
class TaskModel {
 public:
  virtual ~TaskModel() = default;
  // Sum of log p(continuation tokens | document start + context tokens), natural log; the
  // context and the continuation are tokenized separately.
  virtual double loglikelihood(const std::string& context, const std::string& continuation) = 0;
  // Greedy continuation of prompt, ending as TaskItem says (EOS, max_tokens, stop strings).
  virtual std::string generate(const TaskItem& item) = 0;
};

// A checkpoint's Model (full precision, or fake-quant with hooks installed): full forwards.
std::unique_ptr<TaskModel> make_task_model(const Model& m, const Tokenizer& tok);
// A packed .razor through the inference engine (integer kernels, KV cache).
std::unique_ptr<TaskModel> make_task_model(const PackedModel& m, const Tokenizer& tok);

// Whether greedy generation of item may stop with this text generated (a stop string found,
// after the answer marker when there is one), and the prediction it gives.
bool generation_done(const TaskItem& item, const std::string& text);
std::string generation_prediction(const TaskItem& item, const std::string& text);

struct TaskResult {
  std::string name;
  TaskKind kind = TaskKind::Generative;
  int n = 0;
  int correct = 0;       // exact match (generative) or acc (multiple choice)
  int correct_norm = 0;  // acc_norm (multiple choice)
  double acc() const { return n ? double(correct) / n : 0.0; }
  double acc_norm() const { return n ? double(correct_norm) / n : 0.0; }
};

// Half-width of the 95% confidence interval of a proportion p over n items: 1.96 sqrt(p(1-p)/n).
double binomial_ci95(double p, int n);

// Scores items (all of one kind or mixed; mixed files count acc over both kinds, acc_norm
// over the multiple-choice ones only). With `samples`, one JSON object per item is appended
// (as lm-evaluation-harness's --log_samples): {"task", "index", "doc" (the item as in JSONL),
// then "prediction" (generative: the scored text) or "loglikelihoods" (one per choice),
// "pred", "pred_norm" (the argmaxes), and "correct" (and "correct_norm")}.
TaskResult evaluate_task_items(TaskModel& model, const std::vector<TaskItem>& items, const std::string& name,
                               std::vector<Json>* samples = nullptr);

// The built-in suite: `per_task` held-out items of each task (nextsent_mc from heldout_text;
// skipped when that has too little text).
std::vector<TaskResult> evaluate_builtin_suite(TaskModel& model, const TaskSuiteConfig& cfg, int per_task,
                                               std::string_view heldout_text, std::vector<Json>* samples = nullptr);

// JSONL: one item a line (empty lines skipped). Errors name the file and line:
// "FILE:LINE: what is wrong".
std::vector<TaskItem> parse_task_jsonl(std::string_view text, const std::string& source);
std::vector<TaskItem> read_task_jsonl(const std::string& path);
Json task_item_to_json(const TaskItem& item);
std::string task_item_json(const TaskItem& item);  // task_item_to_json dumped: one line, no newline

// "acc 45.0% +- 9.8 (n 100)" / with acc_norm; and the same as JSON.
std::string format_task_result(const TaskResult& r);
Json task_result_json(const TaskResult& r);
// {"arith": {...}, "word": {...}, ...}: task_result_json of each, keyed by name.
Json task_results_json(const std::vector<TaskResult>& rs);
// The text nextsent_mc draws from: the default corpus's validation split ("" when absent).
std::string suite_heldout_text();
// Summary rows "NAME  teacher  student", one per task of a (the one of b with the same name;
// "-" when missing); multiple choice shows acc_norm, generative exact match, each with its CI.
void print_task_comparison(FILE* out, const std::vector<TaskResult>& a, const std::vector<TaskResult>& b, int label_width);

}  // namespace razor
