// The super-group precision plan (NUMERICS.md §2): rho -> which rows are 4-bit, the `--bits`
// synonyms, and the bit accounting of a whole model.
//
// P = max(1, floor(1/rho)); row i of every quantized linear is 4-bit (all its groups) when
// i % P == 0, ternary otherwise; rho = 0 means no 4-bit rows (all ternary). The embedding and
// lm_head are 4-bit with the same G; norm weights are never quantized.
//
// Deliberately not here: the quantizers themselves (quant/quantize.h, which also defines the
// per-tensor WeightLayout this plan hands out), and which tensors a model has (src/nn).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/quantize.h"

namespace razor {

// rho in [0, 1] -> P; 0 means "no 4-bit rows" (rho = 0). A rho read from "p/q" with integers
// gets P = floor(q/p) exactly; decimals are floored with a 1e-9 relative tolerance so that
// 0.125 or 1/3 written as 0.3333333333 do not fall one period short.
int64_t period_from_rho(double rho);

// Parses a rho given as a fraction "1/8", a decimal "0.125", "0" or "1".
// Throws razor::Error naming `option` when it is not a number in [0, 1].
double parse_rho(const std::string& text, const char* option = "--rho");
// `--bits` synonyms: "4" -> 1, "2.79" -> 1/2, "1.88" -> 1/8, "1.58" -> 0 (matched to two
// decimals). Anything else throws, listing the accepted values.
double rho_from_bits(const std::string& text, const char* option = "--bits");
// Either form: a bits synonym when the number is > 1 or is exactly one of the synonyms'
// spellings ("1.58", "1.88", ...), else a rho ("1/8", "0.125", "0", "1").
double parse_precision(const std::string& text, const char* option = "--bits");
// Nominal information bits of the linears for a rho: (4 + (P-1) log2 3) / P (no scales).
double nominal_bits(double rho);

struct PrecisionPlan {
  double rho = 0.125;
  int group = 64;     // G for every quantized tensor
  float beta = 2.0f;  // ternary rows

  int64_t period() const { return period_from_rho(rho); }
  // Layout of the decoder linears (q/k/v/o, gate/up/down).
  WeightLayout linear_layout() const { return WeightLayout::mixed_rows(period(), group, beta); }
  // Layout of the embedding table and lm_head: 4-bit with the same G.
  WeightLayout embedding_layout() const { return WeightLayout::uniform(4, group); }
  std::string str() const;  // "rho=1/8 (P=8) G=64 -> 1.8868 bits"
};

// One matrix of a model for bit accounting.
struct MatrixEntry {
  std::string name;
  int64_t d_out = 0, d_in = 0;  // a 1-D tensor (norm) is d_out = 1, d_in = its length
  WeightLayout layout;          // kNone: not quantized (norms)
  bool shared = false;          // the same parameter as an earlier entry (tied lm_head): not counted
  static MatrixEntry make(std::string name, int64_t d_out, int64_t d_in, const WeightLayout& layout,
                          bool shared = false);
};

struct BitReport {
  int64_t total_params = 0;      // every counted entry, quantized or not
  int64_t quantized_params = 0;  // entries with a quantized layout
  double avg_bits = 0;           // Σ params (b + 16/G) / Σ params over quantized entries
  double avg_bits_no_scales = 0; // Σ params b / Σ params over quantized entries
  double quantized_share = 0;    // quantized_params / total_params
  std::string str() const;
};

// Bit accounting of NUMERICS.md §2: norms (kNone) excluded from the average, shared (tied)
// entries counted once. Throws razor::Error naming a matrix whose d_in is not divisible by G.
BitReport bit_report(const std::vector<MatrixEntry>& matrices);

}  // namespace razor
