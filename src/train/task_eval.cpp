#include "train/task_eval.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/vmath.h"
#include "infer/engine.h"
#include "io/file_util.h"
#include "train/data.h"

namespace razor {

namespace {

std::string trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  size_t a = 0, b = s.size();
  while (a < b && blank(s[a])) ++a;
  while (b > a && blank(s[b - 1])) --b;
  return std::string(s.substr(a, b - a));
}

// Earliest position of any stop string in text at or after `from` (npos: none).
size_t first_stop(const TaskItem& item, const std::string& text, size_t from) {
  size_t best = std::string::npos;
  for (const std::string& s : item.stop)
    if (!s.empty()) best = std::min(best, text.find(s, from));
  return best;
}

// The token ids of document start + context + continuation, cut on the left to max_len
// (lm-evaluation-harness truncates the context the same way); *cont_start: where the
// continuation begins.
std::vector<int32_t> loglik_ids(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                                int64_t max_len, size_t* cont_start) {
  std::vector<int32_t> ids;
  if (tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  tok.encode_append(context, ids);
  const std::vector<int32_t> cont = tok.encode(continuation);
  RZ_CHECK(!cont.empty(), "multiple choice: a choice encodes to no tokens");
  RZ_CHECK(!ids.empty(), "multiple choice: an empty context needs a tokenizer with an end-of-text token");
  RZ_CHECK(int64_t(cont.size()) < max_len, "multiple choice: a choice of %zu tokens does not fit the model's context of %lld",
           cont.size(), (long long)max_len);
  const int64_t keep_ctx = std::min<int64_t>(int64_t(ids.size()), max_len - int64_t(cont.size()));
  ids.erase(ids.begin(), ids.end() - keep_ctx);
  *cont_start = ids.size();
  ids.insert(ids.end(), cont.begin(), cont.end());
  return ids;
}

std::vector<int32_t> prompt_ids(const Tokenizer& tok, const std::string& prompt) {
  std::vector<int32_t> ids;
  if (tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  tok.encode_append(prompt, ids);
  return ids;
}

int32_t argmax(const float* z, int64_t V) { return int32_t(std::max_element(z, z + V) - z); }  // first maximum

class CheckpointTaskModel : public TaskModel {
 public:
  CheckpointTaskModel(const Model& m, const Tokenizer& tok) : m_(m), tok_(tok) {}
  double loglikelihood(const std::string& context, const std::string& continuation) override {
    size_t c0 = 0;
    const std::vector<int32_t> ids = loglik_ids(tok_, context, continuation, m_.cfg.max_position_embeddings, &c0);
    const std::vector<double> lp = next_token_logprobs(m_, ids);  // lp[t] = log p(ids[t+1] | ..t)
    double s = 0;
    for (size_t t = c0; t < ids.size(); ++t) s += lp[t - 1];
    return s;
  }
  std::string generate(const TaskItem& item) override {
    NoGradGuard ng;
    std::vector<int32_t> next = prompt_ids(tok_, item.prompt), gen;
    const int64_t V = m_.cfg.vocab_size;
    std::string text;
    KvCache cache;  // each step runs only the new token (the prompt at once first)
    for (int i = 0; i < item.max_tokens && !next.empty(); ++i) {
      if (cache.len + int64_t(next.size()) > m_.cfg.max_position_embeddings) break;
      Var logits = m_.forward_cached(next, cache);
      const int32_t best = argmax(logits.value().data(), V);
      if (best == tok_.eos_id()) break;
      next.assign(1, best);
      gen.push_back(best);
      text = tok_.decode(gen);
      if (generation_done(item, text)) break;
    }
    return text;
  }

 private:
  const Model& m_;
  const Tokenizer& tok_;
};

class PackedTaskModel : public TaskModel {
 public:
  PackedTaskModel(const PackedModel& m, const Tokenizer& tok) : m_(m), tok_(tok), e_(m) {}
  double loglikelihood(const std::string& context, const std::string& continuation) override {
    size_t c0 = 0;
    const std::vector<int32_t> ids = loglik_ids(tok_, context, continuation, e_.max_context(), &c0);
    e_.reset();
    const float* z = e_.forward(ids.data(), int64_t(ids.size()), /*all_logits=*/true);
    const int64_t V = m_.cfg.vocab_size;
    double s = 0;
    for (size_t t = c0; t < ids.size(); ++t) s += log_prob_at(z + int64_t(t - 1) * V, V, ids[t]);
    return s;
  }
  std::string generate(const TaskItem& item) override {
    std::vector<int32_t> ids = prompt_ids(tok_, item.prompt), gen;
    std::string text;
    if (ids.empty() || int64_t(ids.size()) >= e_.max_context()) return text;
    const int64_t V = m_.cfg.vocab_size;
    e_.reset();
    const float* z = e_.forward(ids.data(), int64_t(ids.size()));
    for (int i = 0; i < item.max_tokens; ++i) {
      const int32_t best = argmax(z, V);
      if (best == tok_.eos_id()) break;
      gen.push_back(best);
      text = tok_.decode(gen);
      if (generation_done(item, text)) break;
      if (e_.pos() + 1 >= e_.max_context()) break;
      z = e_.decode(best);
    }
    return text;
  }

 private:
  const PackedModel& m_;
  const Tokenizer& tok_;
  Engine e_;
};

}  // namespace

std::unique_ptr<TaskModel> make_task_model(const Model& m, const Tokenizer& tok) {
  return std::unique_ptr<TaskModel>(new CheckpointTaskModel(m, tok));
}
std::unique_ptr<TaskModel> make_task_model(const PackedModel& m, const Tokenizer& tok) {
  return std::unique_ptr<TaskModel>(new PackedTaskModel(m, tok));
}

bool generation_done(const TaskItem& item, const std::string& text) {
  size_t from = 0;
  if (!item.answer_after.empty()) {
    const size_t p = text.find(item.answer_after);
    if (p == std::string::npos) return false;
    from = p + item.answer_after.size();
  }
  return first_stop(item, text, from) != std::string::npos;
}

std::string generation_prediction(const TaskItem& item, const std::string& text) {
  size_t from = 0;
  if (!item.answer_after.empty()) {
    const size_t p = text.rfind(item.answer_after);
    if (p == std::string::npos) return std::string();
    from = p + item.answer_after.size();
  }
  const size_t end = first_stop(item, text, from);
  return trim(std::string_view(text).substr(from, end == std::string::npos ? std::string::npos : end - from));
}

double binomial_ci95(double p, int n) { return n > 0 ? 1.96 * std::sqrt(p * (1 - p) / double(n)) : 0.0; }

TaskResult evaluate_task_items(TaskModel& model, const std::vector<TaskItem>& items, const std::string& name,
                               std::vector<Json>* samples) {
  TaskResult r;
  r.name = name;
  bool any_mc = false;
  for (const TaskItem& it : items) {
    // The item's record; kept only with `samples` (its cost is nothing next to the forwards).
    Json rec = Json::object();
    rec.set("task", name);
    rec.set("index", r.n);
    rec.set("doc", task_item_to_json(it));
    r.n++;
    if (it.kind == TaskKind::MultipleChoice) {
      any_mc = true;
      int best = 0, best_norm = 0;
      double ll_best = 0, norm_best = 0;
      Json lls = Json::array();
      for (size_t c = 0; c < it.choices.size(); ++c) {
        const double ll = model.loglikelihood(it.context, it.delimiter + it.choices[c]);
        const double norm = ll / double(it.choices[c].size());  // UTF-8 bytes, as harness's len() on ASCII
        if (c == 0 || ll > ll_best) best = int(c), ll_best = ll;
        if (c == 0 || norm > norm_best) best_norm = int(c), norm_best = norm;
        lls.push_back(Json(ll));
      }
      r.correct += best == it.gold;
      r.correct_norm += best_norm == it.gold;
      rec.set("loglikelihoods", lls);
      rec.set("pred", best);
      rec.set("pred_norm", best_norm);
      rec.set("correct", Json(best == it.gold));
      rec.set("correct_norm", Json(best_norm == it.gold));
    } else {
      const std::string pred = generation_prediction(it, model.generate(it));
      const bool ok = pred == trim(it.answer);
      r.correct += ok;
      r.correct_norm += ok;
      rec.set("prediction", pred);
      rec.set("correct", Json(ok));
    }
    if (samples) samples->push_back(std::move(rec));
  }
  r.kind = any_mc ? TaskKind::MultipleChoice : TaskKind::Generative;
  return r;
}

std::vector<TaskResult> evaluate_builtin_suite(TaskModel& model, const TaskSuiteConfig& cfg, int per_task,
                                               std::string_view heldout_text, std::vector<Json>* samples) {
  std::vector<TaskResult> out;
  for (const std::string& t : builtin_task_names()) {
    std::vector<TaskItem> items = task_heldout_items(t, cfg, size_t(per_task), heldout_text);
    if (items.empty()) continue;
    out.push_back(evaluate_task_items(model, items, t, samples));
  }
  return out;
}

// ---- JSONL

namespace {

[[noreturn]] void bad(const std::string& where, const char* what) { fail("%s: %s", where.c_str(), what); }

const std::string& string_field(const Json& j, const char* key, const std::string& where) {
  const Json* v = j.find(key);
  if (!v) fail("%s: missing \"%s\"", where.c_str(), key);
  if (!v->is_string()) fail("%s: \"%s\" must be a string", where.c_str(), key);
  return v->as_string();
}

TaskItem parse_item(const Json& j, const std::string& where) {
  if (!j.is_object()) bad(where, "expected a JSON object ({\"context\", \"choices\", \"gold\"} or {\"prompt\", \"answer\"})");
  const bool mc = j.has("context") || j.has("choices") || j.has("gold");
  const bool gen = j.has("prompt") || j.has("answer");
  if (mc && gen) bad(where, "an item is either multiple choice (context, choices, gold) or generative (prompt, answer), not both");
  if (!mc && !gen) bad(where, "no \"context\" (multiple choice) or \"prompt\" (generative)");
  TaskItem it;
  if (mc) {
    it.kind = TaskKind::MultipleChoice;
    it.context = string_field(j, "context", where);
    const Json* ch = j.find("choices");
    if (!ch) bad(where, "missing \"choices\"");
    if (!ch->is_array()) bad(where, "\"choices\" must be a list of strings");
    if (ch->size() < 2) bad(where, "\"choices\" needs at least 2 choices");
    for (const Json& c : ch->items()) {
      if (!c.is_string()) bad(where, "\"choices\" must be a list of strings");
      if (c.as_string().empty()) bad(where, "a choice is empty (acc_norm divides by its length)");
      it.choices.push_back(c.as_string());
    }
    const Json* g = j.find("gold");
    if (!g) bad(where, "missing \"gold\"");
    if (!g->is_int()) bad(where, "\"gold\" must be an integer index into \"choices\"");
    if (g->as_int() < 0 || g->as_int() >= int64_t(it.choices.size()))
      fail("%s: \"gold\" is %lld, outside 0..%zu", where.c_str(), (long long)g->as_int(), it.choices.size() - 1);
    it.gold = int(g->as_int());
    if (j.has("delimiter")) it.delimiter = string_field(j, "delimiter", where);
    for (const char* k : {"stop", "max_tokens", "answer_after"})
      if (j.has(k)) fail("%s: \"%s\" belongs to generative items", where.c_str(), k);
  } else {
    it.prompt = string_field(j, "prompt", where);
    it.answer = string_field(j, "answer", where);
    if (trim(it.answer).empty()) bad(where, "\"answer\" is empty");
    if (const Json* s = j.find("stop")) {
      it.stop.clear();
      if (s->is_string()) {
        it.stop.push_back(s->as_string());
      } else if (s->is_array()) {
        for (const Json& e : s->items()) {
          if (!e.is_string()) bad(where, "\"stop\" must be a string or a list of strings");
          it.stop.push_back(e.as_string());
        }
      } else {
        bad(where, "\"stop\" must be a string or a list of strings");
      }
      for (const std::string& e : it.stop)
        if (e.empty()) bad(where, "a \"stop\" string is empty");
    }
    if (const Json* m = j.find("max_tokens")) {
      if (!m->is_int() || m->as_int() < 1 || m->as_int() > 4096) bad(where, "\"max_tokens\" must be an integer in 1..4096");
      it.max_tokens = int(m->as_int());
    }
    if (j.has("answer_after")) {
      it.answer_after = string_field(j, "answer_after", where);
      if (it.answer_after.empty()) bad(where, "\"answer_after\" is empty");
    }
    if (j.has("delimiter")) bad(where, "\"delimiter\" belongs to multiple-choice items");
  }
  return it;
}

}  // namespace

std::vector<TaskItem> parse_task_jsonl(std::string_view text, const std::string& source) {
  std::vector<TaskItem> items;
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (++line_no == 1 && line.substr(0, 3) == "\xef\xbb\xbf") line.remove_prefix(3);  // a UTF-8 byte-order mark
    if (trim(line).empty()) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    Json j;
    try {
      j = Json::parse(line, "line");
    } catch (const Error& e) {
      std::string msg = e.what();
      const size_t c = msg.find("column");
      fail("%s: invalid JSON (%s)", where.c_str(), c == std::string::npos ? msg.c_str() : msg.c_str() + c);
    }
    items.push_back(parse_item(j, where));
  }
  if (items.empty()) fail("%s: no task items (expected one JSON object a line)", source.c_str());
  return items;
}

std::vector<TaskItem> read_task_jsonl(const std::string& path) {
  if (!path_exists(path)) fail("--task: %s: no such file", path.c_str());
  if (is_directory(path)) fail("--task: %s: is a directory, expected a .jsonl file", path.c_str());
  return parse_task_jsonl(read_file(path), path);
}

Json task_item_to_json(const TaskItem& it) {
  Json j = Json::object();
  if (it.kind == TaskKind::MultipleChoice) {
    j.set("context", it.context);
    Json c = Json::array();
    for (const std::string& s : it.choices) c.push_back(s);
    j.set("choices", c);
    j.set("gold", it.gold);
    if (it.delimiter != " ") j.set("delimiter", it.delimiter);
  } else {
    j.set("prompt", it.prompt);
    j.set("answer", it.answer);
    if (it.stop.size() == 1) {
      j.set("stop", it.stop[0]);
    } else {
      Json s = Json::array();
      for (const std::string& e : it.stop) s.push_back(e);
      j.set("stop", s);
    }
    j.set("max_tokens", it.max_tokens);
    if (!it.answer_after.empty()) j.set("answer_after", it.answer_after);
  }
  return j;
}

std::string task_item_json(const TaskItem& it) { return task_item_to_json(it).dump(); }

std::string format_task_result(const TaskResult& r) {
  const double a = r.acc();
  if (r.kind == TaskKind::MultipleChoice)
    return strfmt("acc %5.1f%% +- %4.1f  acc_norm %5.1f%% +- %4.1f  (n %d)", 100 * a, 100 * binomial_ci95(a, r.n),
                  100 * r.acc_norm(), 100 * binomial_ci95(r.acc_norm(), r.n), r.n);
  return strfmt("exact match %5.1f%% +- %4.1f  (n %d)", 100 * a, 100 * binomial_ci95(a, r.n), r.n);
}

Json task_result_json(const TaskResult& r) {
  Json j = Json::object();
  j.set("task", r.name);
  j.set("kind", r.kind == TaskKind::MultipleChoice ? "multiple_choice" : "generative");
  j.set("n", r.n);
  if (r.kind == TaskKind::MultipleChoice) {
    j.set("acc", Json(r.acc()));
    j.set("acc_ci95", Json(binomial_ci95(r.acc(), r.n)));
    j.set("acc_norm", Json(r.acc_norm()));
    j.set("acc_norm_ci95", Json(binomial_ci95(r.acc_norm(), r.n)));
  } else {
    j.set("exact_match", Json(r.acc()));
    j.set("exact_match_ci95", Json(binomial_ci95(r.acc(), r.n)));
  }
  return j;
}

Json task_results_json(const std::vector<TaskResult>& rs) {
  Json j = Json::object();
  for (const TaskResult& r : rs) j.set(r.name, task_result_json(r));
  return j;
}

std::string suite_heldout_text() {
  const std::string p = default_corpus_dir() + "/valid.txt";
  return path_exists(p) ? read_file(p) : std::string();
}

void print_task_comparison(FILE* out, const std::vector<TaskResult>& a, const std::vector<TaskResult>& b, int label_width) {
  auto cell = [](const TaskResult* r) {
    if (!r) return std::string("-");
    const double p = r->kind == TaskKind::MultipleChoice ? r->acc_norm() : r->acc();
    return strfmt("%.1f%% +-%5.1f", 100 * p, 100 * binomial_ci95(p, r->n));
  };
  std::string ns;
  for (const TaskResult& r : a) {
    const TaskResult* o = nullptr;
    for (const TaskResult& x : b)
      if (x.name == r.name) o = &x;
    const std::string label = r.name + (r.kind == TaskKind::MultipleChoice ? " acc_norm" : " exact match");
    std::fprintf(out, "%-*s %14s %14s\n", label_width, label.c_str(), cell(&r).c_str(), cell(o).c_str());
    const std::string n = std::to_string(r.n);
    if (ns.find(n) == std::string::npos) ns += (ns.empty() ? "" : "/") + n;
  }
  if (!a.empty())
    std::fprintf(out, "%-*s (held-out items per task: %s; +- the 95%% interval; docs/tasks.md)\n", label_width, "",
                 ns.c_str());
}

}  // namespace razor
