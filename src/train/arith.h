// The arithmetic probe task: lines like "Q: 37+58= A: 95" mixed into the training corpus,
// and an exact-match evaluator on held-out problems. It measures whether a (quantized)
// student kept a small, crisp skill, which perplexity alone hides.
// Problems: a+b and a-b with operands 0..99 (a >= b for subtraction, so answers are never
// negative), a*b with operands 0..12. The problem space is split once, by a hash of the
// problem, into train (90%) and held-out (10%) parts, so no evaluated problem is ever seen
// in training. Everything is deterministic from the seed.
// Deliberately not here: tokenization, models, sampling (the evaluator takes a callback).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace razor {

enum class ArithSplit { Train, Heldout };

struct ArithProblem {
  int a = 0, b = 0;
  char op = '+';  // '+', '-', '*'
  int answer() const;
  std::string prompt() const;  // "Q: 37+58= A:"
  std::string target() const;  // " 95" (what a greedy completion of prompt() must produce)
  std::string line() const;    // prompt() + target()
};

// Whether a problem belongs to the held-out part of the problem space (about 10%).
bool arith_is_heldout(const ArithProblem& p);

// n problems of the given split, deterministic from seed (repeats possible in long lists).
std::vector<ArithProblem> make_arith_problems(uint64_t seed, size_t n, ArithSplit split);

// n_docs training documents of lines_per_doc problem lines each, joined by '\n': the form
// mixed into the text corpus (documents are separated by EOS like any other document).
std::vector<std::string> make_arith_documents(uint64_t seed, size_t n_docs, int lines_per_doc,
                                              ArithSplit split = ArithSplit::Train);

// Greedy completion of `prompt`, at most max_tokens tokens, returned as text (without the
// prompt). Supplied by whoever owns a model.
using GreedyCompleteFn = std::function<std::string(const std::string& prompt, int max_tokens)>;

struct ArithEvalResult {
  int correct = 0;
  int total = 0;
  double accuracy() const { return total ? double(correct) / total : 0.0; }
};

// A completion is correct when its text up to the first newline, with trailing blanks
// removed, equals target() exactly (" 95": the leading space is part of the answer).
bool arith_answer_matches(const std::string& completion, const std::string& target);

// Exact-match accuracy on k held-out problems drawn from seed.
ArithEvalResult eval_arith(const GreedyCompleteFn& greedy_complete, uint64_t seed, int k,
                           int max_tokens = 6);

}  // namespace razor
