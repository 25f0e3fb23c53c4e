// The built-in task suite: generated tasks that measure skills perplexity hides, each with
// training documents (mixed into the pretraining text) and held-out evaluation items.
//   arith         Q: 743+985= A: 639     +, - (a >= b) with 1-4 digit operands, 1-3 digit x 1
//                                        digit products; every number least-significant digit
//                                        first (docs/tasks.md says why); exact match
//   word          GSM8K-shaped stories with 2-4 operations, a worked solution (one equation a
//                 line, same number convention) and a final line `#### N`; exact match on N
//   knowledge     a generated world of people with four attributes (birthplace, trade, colour,
//                 pet) stated in varied sentence templates in training documents; held-out
//                 facts asked with a question template no training document uses; exact match
//   knowledge_mc  the same held-out facts as 4-way multiple choice (log-likelihood)
//   knowledge_facts  the same held-out facts asked with one of the attribute's training
//                 question templates: a fact no training question asks, in known wording; exact match
//   nextsent_mc   the true next sentence of held-out corpus text among 4 (log-likelihood)
// The held-out split is by a hash of the problem (its operands, its story, its fact), never by
// draw order, so it does not depend on the seed and no held-out problem can be drawn into a
// training document. Everything is deterministic from the seed.
// Deliberately not here: models, tokenization, scoring (train/task_eval.h), JSONL (same).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace razor {

enum class TaskKind { Generative, MultipleChoice };

// One evaluation item, as lm-evaluation-harness would state it (and as the JSONL files hold it).
struct TaskItem {
  TaskKind kind = TaskKind::Generative;
  // Generative: greedy continuation of `prompt`; exact match of the prediction with `answer`
  // (both trimmed of surrounding blanks). Generation ends at EOS, after max_tokens, or at the
  // first `stop` string; with answer_after set, only at a stop string after that marker, and
  // the prediction is the text between the marker's last occurrence and that stop.
  std::string prompt, answer;
  std::vector<std::string> stop = {"\n"};
  std::string answer_after;
  int max_tokens = 32;
  // Multiple choice: log p(delimiter + choice | context) for every choice; acc takes the
  // argmax of the sums, acc_norm of the sums divided by each choice's UTF-8 byte length.
  std::string context;
  std::vector<std::string> choices;
  int gold = 0;
  std::string delimiter = " ";
};

// Built-in task names, in summary order.
const std::vector<std::string>& builtin_task_names();

// The version of the generated text: caches of text built from the suite (the default
// training mix's token shards, train/data.cpp) are keyed by it, so bump it whenever a
// generator's output changes (2: six training question templates per attribute; 3: eight, with
// a "What <noun> does {N} <verb>?" frame for every attribute; 4: twelve, four or more verbs in
// that frame for every attribute and "What <noun> does {N} have?" for all four).
constexpr int kTaskSuiteVersion = 4;

struct TaskSuiteConfig {
  uint64_t seed = 1234;
  int world_people = 300;  // entities of the knowledge world
  // Weight of the knowledge documents (statements and questions) in the training mix: their
  // shares of the task bytes are 25% and 10% times this, before the four shares are scaled to
  // sum to 1. Held-out items do not depend on it.
  double knowledge_weight = 1.0;
};

// Digits of n >= 0, least-significant first: 936 -> "639" (the suite's number convention).
std::string lsd_digits(int64_t n);

// Whether a problem key belongs to the held-out part of its task's problem space (about 10%).
bool task_key_heldout(std::string_view task, std::string_view key);

// n held-out items of a built-in task. nextsent_mc draws from heldout_text (text never used
// for training: the corpus's validation split), documents separated by empty lines; with
// too little text it returns fewer items.
std::vector<TaskItem> task_heldout_items(const std::string& task, const TaskSuiteConfig& cfg, size_t n,
                                         std::string_view heldout_text = {});

// Training documents of every generated task (arith, word, knowledge statements and
// training-template questions), about target_bytes in all, in a fixed deterministic order.
// Share of bytes: arithmetic 40%, word problems 25%, knowledge statements 25%, questions 10%
// (the knowledge shares times cfg.knowledge_weight, then all four scaled to sum to 1).
std::vector<std::string> task_training_documents(const TaskSuiteConfig& cfg, size_t target_bytes);

// The training text of the mix: every document of `corpus_docs` and task documents of about
// mix / (1 - mix) times the corpus bytes (mix = share of task bytes, 0 <= mix < 1), interleaved
// evenly and deterministically. Each string is one document (no empty lines inside).
std::vector<std::string> mix_training_documents(const std::vector<std::string>& corpus_docs, double mix,
                                                const TaskSuiteConfig& cfg);

// ---- internals shared by the generator files (tasks_*.cpp)
std::vector<TaskItem> arith_items(const TaskSuiteConfig& cfg, size_t n, bool heldout);
std::vector<TaskItem> word_items(const TaskSuiteConfig& cfg, size_t n, bool heldout);
// training_template: ask with one of the attribute's training question templates instead of
// the held-out one (the same facts in the same order).
std::vector<TaskItem> knowledge_items(const TaskSuiteConfig& cfg, size_t n, bool multiple_choice,
                                      bool training_template = false);
std::vector<TaskItem> nextsent_items(const TaskSuiteConfig& cfg, size_t n, std::string_view heldout_text);
// Training documents of one generator, appended to out until out_bytes reaches budget.
void arith_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out);
void word_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out);
void knowledge_statement_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out);
void knowledge_question_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out);

}  // namespace razor
