#include "train/arith.h"

#include "core/checksum.h"
#include "core/error.h"
#include "core/rng.h"

namespace razor {

int ArithProblem::answer() const {
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    default: return a * b;
  }
}

std::string ArithProblem::prompt() const {
  return "Q: " + std::to_string(a) + op + std::to_string(b) + "= A:";
}

std::string ArithProblem::target() const { return " " + std::to_string(answer()); }

std::string ArithProblem::line() const { return prompt() + target(); }

bool arith_is_heldout(const ArithProblem& p) {
  const unsigned char key[3] = {static_cast<unsigned char>(p.a), static_cast<unsigned char>(p.op),
                                static_cast<unsigned char>(p.b)};
  return fnv1a64(key, 3) % 10 == 0;
}

static ArithProblem draw_problem(Rng& rng) {
  ArithProblem p;
  uint64_t kind = rng.below(20);  // 9/20 add, 8/20 sub, 3/20 mul
  if (kind < 9) {
    p.op = '+';
    p.a = int(rng.below(100));
    p.b = int(rng.below(100));
  } else if (kind < 17) {
    p.op = '-';
    p.a = int(rng.below(100));
    p.b = int(rng.below(uint64_t(p.a) + 1));
  } else {
    p.op = '*';
    p.a = int(rng.below(13));
    p.b = int(rng.below(13));
  }
  return p;
}

std::vector<ArithProblem> make_arith_problems(uint64_t seed, size_t n, ArithSplit split) {
  Rng rng(seed ^ 0x61726974686d6574ull);  // "arithmet": keeps this stream apart from others
  std::vector<ArithProblem> out;
  out.reserve(n);
  bool want_heldout = split == ArithSplit::Heldout;
  while (out.size() < n) {
    ArithProblem p = draw_problem(rng);
    if (arith_is_heldout(p) == want_heldout) out.push_back(p);
  }
  return out;
}

std::vector<std::string> make_arith_documents(uint64_t seed, size_t n_docs, int lines_per_doc,
                                              ArithSplit split) {
  RZ_CHECK(lines_per_doc > 0, "arithmetic documents: lines per document must be > 0 (got %d)",
           lines_per_doc);
  std::vector<ArithProblem> problems = make_arith_problems(seed, n_docs * size_t(lines_per_doc), split);
  std::vector<std::string> docs(n_docs);
  for (size_t d = 0; d < n_docs; ++d) {
    for (int l = 0; l < lines_per_doc; ++l) {
      if (l) docs[d] += '\n';
      docs[d] += problems[d * size_t(lines_per_doc) + size_t(l)].line();
    }
  }
  return docs;
}

bool arith_answer_matches(const std::string& completion, const std::string& target) {
  std::string s = completion.substr(0, completion.find('\n'));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s == target;
}

ArithEvalResult eval_arith(const GreedyCompleteFn& greedy_complete, uint64_t seed, int k,
                           int max_tokens) {
  RZ_CHECK(k > 0, "arithmetic evaluation: problem count must be > 0 (got %d)", k);
  ArithEvalResult r;
  for (const ArithProblem& p : make_arith_problems(seed, size_t(k), ArithSplit::Heldout)) {
    r.total++;
    if (arith_answer_matches(greedy_complete(p.prompt(), max_tokens), p.target())) r.correct++;
  }
  return r;
}

}  // namespace razor
