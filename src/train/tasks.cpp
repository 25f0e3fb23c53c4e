// The built-in task suite (train/tasks.h): the split, arithmetic, word problems, and the
// training mix. The knowledge world and next-sentence items are in tasks_world.cpp.
#include "train/tasks.h"

#include <algorithm>

#include "core/checksum.h"
#include "core/error.h"
#include "core/rng.h"

namespace razor {

const std::vector<std::string>& builtin_task_names() {
  static const std::vector<std::string> names = {"arith", "word", "knowledge", "knowledge_mc", "knowledge_facts",
                                                 "nextsent_mc"};
  return names;
}

std::string lsd_digits(int64_t n) {
  RZ_ASSERT(n >= 0);
  std::string s = std::to_string(n);
  std::reverse(s.begin(), s.end());
  return s;
}

bool task_key_heldout(std::string_view task, std::string_view key) {
  std::string k(task);
  k += '|';
  k.append(key.data(), key.size());
  return fnv1a64(k.data(), k.size()) % 10 == 0;
}

std::vector<TaskItem> task_heldout_items(const std::string& task, const TaskSuiteConfig& cfg, size_t n,
                                         std::string_view heldout_text) {
  if (task == "arith") return arith_items(cfg, n, true);
  if (task == "word") return word_items(cfg, n, true);
  if (task == "knowledge") return knowledge_items(cfg, n, false);
  if (task == "knowledge_mc") return knowledge_items(cfg, n, true);
  if (task == "knowledge_facts") return knowledge_items(cfg, n, false, /*training_template=*/true);
  if (task == "nextsent_mc") return nextsent_items(cfg, n, heldout_text);
  fail("task '%s': not a built-in task (arith, word, knowledge, knowledge_mc, knowledge_facts, nextsent_mc)",
       task.c_str());
}

// Lists merged evenly: element i of a list of n sits at fraction (i + 0.5) / n; ties keep list order.
static std::vector<std::string> interleave(std::vector<std::vector<std::string>> lists) {
  struct At {
    double pos;
    size_t list, i;
  };
  std::vector<At> at;
  for (size_t l = 0; l < lists.size(); ++l)
    for (size_t i = 0; i < lists[l].size(); ++i) at.push_back({(double(i) + 0.5) / double(lists[l].size()), l, i});
  std::stable_sort(at.begin(), at.end(), [](const At& a, const At& b) { return a.pos < b.pos; });
  std::vector<std::string> out;
  out.reserve(at.size());
  for (const At& a : at) out.push_back(std::move(lists[a.list][a.i]));
  return out;
}

std::vector<std::string> task_training_documents(const TaskSuiteConfig& cfg, size_t target_bytes) {
  RZ_CHECK(cfg.knowledge_weight >= 0 && cfg.knowledge_weight <= 100,
           "task mix: the knowledge weight must be in [0, 100] (got %g)", cfg.knowledge_weight);
  const double k = cfg.knowledge_weight, sum = 0.40 + 0.25 + 0.35 * k;
  const double bytes = double(target_bytes) / sum;
  std::vector<std::vector<std::string>> parts(4);
  arith_documents(cfg, size_t(0.40 * bytes), parts[0]);
  word_documents(cfg, size_t(0.25 * bytes), parts[1]);
  knowledge_statement_documents(cfg, size_t(0.25 * k * bytes), parts[2]);
  knowledge_question_documents(cfg, size_t(0.10 * k * bytes), parts[3]);
  return interleave(std::move(parts));
}

std::vector<std::string> mix_training_documents(const std::vector<std::string>& corpus_docs, double mix,
                                                const TaskSuiteConfig& cfg) {
  RZ_CHECK(mix >= 0 && mix < 1, "--mix: the share of task text must be in [0, 1) (got %g)", mix);
  size_t corpus_bytes = 0;
  for (const std::string& d : corpus_docs) corpus_bytes += d.size();
  const size_t task_bytes = mix > 0 ? size_t(double(corpus_bytes) * mix / (1 - mix)) : 0;
  std::vector<std::vector<std::string>> parts = {corpus_docs, {}};
  if (task_bytes > 0) parts[1] = task_training_documents(cfg, task_bytes);
  return interleave(std::move(parts));
}

// ---- arithmetic

namespace {

struct Arith {
  int64_t a = 0, b = 0;
  char op = '+';
  int64_t answer() const { return op == '+' ? a + b : op == '-' ? a - b : a * b; }
  std::string key() const { return std::to_string(a) + op + std::to_string(b); }
  std::string prompt() const { return "Q: " + lsd_digits(a) + op + lsd_digits(b) + "= A:"; }
};

// A number of exactly d digits (d = 1: 0..9).
int64_t draw_digits(Rng& rng, int d) {
  int64_t lo = d == 1 ? 0 : 1;
  for (int i = 1; i < d; ++i) lo *= 10;
  int64_t hi = d == 1 ? 9 : lo * 10 - 1;
  return lo + int64_t(rng.below(uint64_t(hi - lo + 1)));
}

// 40% addition, 40% subtraction (a >= b), both with 1-4 digit operands drawn digit count first
// (so 4-digit carries are as common as 1-digit ones); 20% products of 1-3 digits by 2..9.
Arith draw_arith(Rng& rng) {
  Arith p;
  uint64_t kind = rng.below(10);
  if (kind < 8) {
    p.op = kind < 4 ? '+' : '-';
    p.a = draw_digits(rng, 1 + int(rng.below(4)));
    p.b = draw_digits(rng, 1 + int(rng.below(4)));
    if (p.op == '-' && p.a < p.b) std::swap(p.a, p.b);
  } else {
    p.op = '*';
    p.a = draw_digits(rng, 1 + int(rng.below(3)));
    p.b = 2 + int64_t(rng.below(8));
  }
  return p;
}

}  // namespace

std::vector<TaskItem> arith_items(const TaskSuiteConfig& cfg, size_t n, bool heldout) {
  Rng rng(cfg.seed ^ 0x61726974682d6576ull);  // "arith-ev"
  std::vector<TaskItem> out;
  while (out.size() < n) {
    Arith p = draw_arith(rng);
    if (task_key_heldout("arith", p.key()) != heldout) continue;
    TaskItem it;
    it.prompt = p.prompt();
    it.answer = lsd_digits(p.answer());
    it.max_tokens = 12;
    out.push_back(std::move(it));
  }
  return out;
}

void arith_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out) {
  Rng rng(cfg.seed ^ 0x61726974682d7472ull);  // "arith-tr"
  for (size_t bytes = 0; bytes < budget;) {
    std::string doc;
    for (int l = 0; l < 8;) {
      Arith p = draw_arith(rng);
      if (task_key_heldout("arith", p.key())) continue;
      if (l++) doc += '\n';
      doc += p.prompt() + " " + lsd_digits(p.answer());
    }
    bytes += doc.size();
    out.push_back(std::move(doc));
  }
}

// ---- word problems

namespace {

struct Person {
  const char *name, *subj, *obj;
};
const Person kPeople[] = {{"Mia", "she", "her"},  {"Leo", "he", "him"},   {"Ava", "she", "her"},
                          {"Sam", "he", "him"},   {"Nora", "she", "her"}, {"Ben", "he", "him"},
                          {"Lily", "she", "her"}, {"Max", "he", "him"},   {"Zoe", "she", "her"},
                          {"Tom", "he", "him"},   {"Ella", "she", "her"}, {"Jack", "he", "him"},
                          {"Ruby", "she", "her"}, {"Owen", "he", "him"},  {"Ivy", "she", "her"},
                          {"Finn", "he", "him"}};
const char* const kThings[] = {"apples", "pencils", "marbles", "stickers", "cookies", "coins",
                               "books",  "shells",  "cards",   "eggs",     "stamps",  "buttons"};
const char* const kBoxes[] = {"bags", "boxes", "packs", "jars"};

template <size_t N, class T>
const T& pick(Rng& rng, const T (&a)[N]) {
  return a[rng.below(N)];
}

std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = char(s[0] - 'a' + 'A');
  return s;
}

std::string eq(int64_t x, char op, int64_t y, int64_t z) {
  return lsd_digits(x) + op + lsd_digits(y) + "=" + lsd_digits(z);
}

struct Word {
  std::string prompt;     // "Question: ... \nAnswer:"
  std::string solution;   // " 4*21=84\n...\n#### 71"
  int64_t answer = 0;
};

// A story of 2-4 operations on one count: adds, takes away (never below 1), groups (k x m
// added: two operations) and doubling / tripling.
Word draw_word(Rng& rng) {
  const Person& p = pick(rng, kPeople);
  const Person* f = &pick(rng, kPeople);
  while (f == &p) f = &pick(rng, kPeople);
  const std::string thing = pick(rng, kThings);
  int64_t cur = 2 + int64_t(rng.below(60));
  const int target_ops = 2 + int(rng.below(3));
  std::string story = std::string(p.name) + " has " + lsd_digits(cur) + " " + thing + ".";
  std::vector<std::string> lines;
  for (int ops = 0; ops < target_ops;) {
    const int left = target_ops - ops;
    int kind = int(rng.below(4));  // 0 add, 1 take away, 2 groups, 3 times
    if (kind == 2 && left < 2) kind = 0;
    if (kind == 3 && cur > 400) kind = 1;
    if (kind == 1 && cur < 3) kind = 0;
    if (kind == 0) {
      int64_t b = 1 + int64_t(rng.below(40));
      const int v = int(rng.below(3));
      story += v == 0 ? " " + cap(p.subj) + " buys " + lsd_digits(b) + " more " + thing + "."
               : v == 1 ? " " + cap(p.subj) + " finds " + lsd_digits(b) + " " + thing + "."
                        : " " + std::string(f->name) + " gives " + p.obj + " " + lsd_digits(b) + " " + thing + ".";
      lines.push_back(eq(cur, '+', b, cur + b));
      cur += b;
      ops += 1;
    } else if (kind == 1) {
      int64_t b = 1 + int64_t(rng.below(uint64_t(cur - 1)));
      const int v = int(rng.below(3));
      story += v == 0 ? " " + cap(p.subj) + " gives " + lsd_digits(b) + " " + thing + " to " + f->name + "."
               : v == 1 ? " " + cap(p.subj) + " loses " + lsd_digits(b) + " " + thing + "."
                        : " " + cap(p.subj) + " sells " + lsd_digits(b) + " " + thing + ".";
      lines.push_back(eq(cur, '-', b, cur - b));
      cur -= b;
      ops += 1;
    } else if (kind == 2) {
      int64_t k = 2 + int64_t(rng.below(8)), m = 2 + int64_t(rng.below(19));
      const std::string box = pick(rng, kBoxes);
      story += " " + cap(p.subj) + " buys " + lsd_digits(k) + " " + box + " with " + lsd_digits(m) + " " + thing +
               " in each.";
      lines.push_back(eq(k, '*', m, k * m));
      lines.push_back(eq(cur, '+', k * m, cur + k * m));
      cur += k * m;
      ops += 2;
    } else {
      int64_t k = 2 + int64_t(rng.below(2));
      story += std::string(" Then the number of ") + thing + " " + p.subj + " has " + (k == 2 ? "doubles." : "triples.");
      lines.push_back(eq(cur, '*', k, cur * k));
      cur *= k;
      ops += 1;
    }
  }
  Word w;
  w.prompt = "Question: " + story + " How many " + thing + " does " + p.name + " have now?\nAnswer:";
  for (const std::string& l : lines) w.solution += " " + l + "\n";
  w.solution = w.solution.substr(0, w.solution.size() - 1);  // no trailing newline
  // One equation a line: " a+b=c\n d*e=f\n#### N" (the space keeps each line's first number
  // tokenized as the rest of them are).
  w.solution += "\n#### " + lsd_digits(cur);
  w.answer = cur;
  return w;
}

}  // namespace

std::vector<TaskItem> word_items(const TaskSuiteConfig& cfg, size_t n, bool heldout) {
  Rng rng(cfg.seed ^ 0x776f72642d657661ull);  // "word-eva"
  std::vector<TaskItem> out;
  while (out.size() < n) {
    Word w = draw_word(rng);
    if (task_key_heldout("word", w.prompt) != heldout) continue;
    TaskItem it;
    it.prompt = w.prompt;
    it.answer = lsd_digits(w.answer);
    it.answer_after = "#### ";
    it.stop = {"\n"};
    it.max_tokens = 72;  // the longest solution (4 lines of 4-digit numbers, one token a digit) is ~62 tokens
    out.push_back(std::move(it));
  }
  return out;
}

void word_documents(const TaskSuiteConfig& cfg, size_t budget, std::vector<std::string>& out) {
  Rng rng(cfg.seed ^ 0x776f72642d747261ull);  // "word-tra"
  for (size_t bytes = 0; bytes < budget;) {
    std::string doc;
    for (int k = 0; k < 3;) {
      Word w = draw_word(rng);
      if (task_key_heldout("word", w.prompt)) continue;
      if (k++) doc += '\n';
      doc += w.prompt + w.solution;
    }
    bytes += doc.size();
    out.push_back(std::move(doc));
  }
}

}  // namespace razor
