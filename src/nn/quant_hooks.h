// QuantLinear for the transformer: installs fake quantizers with straight-through
// estimators (NUMERICS.md §1-4) on a Model's hooks, so the training forward computes with
// the quantized weights (and optionally A8 inputs and KV8 keys/values) while gradients flow
// unchanged to the latent weights. The same forward without hooks is the full-precision model.
// Deliberately not here: the quantizers themselves (src/quant), packing (src/infer).
#pragma once
#include <string>
#include <vector>

#include "nn/model.h"
#include "quant/plan.h"
#include "quant/quantize.h"

namespace razor {

struct QuantSpec {
  PrecisionPlan plan;          // rho, G, beta for the linears
  bool a8 = false;             // 8-bit per-token per-group activations into every linear
  bool kv8 = false;            // 8-bit K (after norm + RoPE) and V, one scale per (token, kv head)
  bool quantize_weights = true;    // false: weights stay as they are (A8 / KV8 hooks only)
  bool quantize_embedding = true;  // embedding and lm_head at 4-bit (NUMERICS.md §2)
  // With a8: each quantized decoder linear's forward product runs on the packed integer
  // kernels (kernels/qgemm.h: A8 codes x weight codes, exact int32 per group), as the engine
  // runs it; equal to the fp32 product of the fake-quant operands up to summation order. The
  // backward is unchanged (fp32, on the fake-quant copies). Layouts without a packed form
  // (uniform n-bit, int8) and the embedding / lm_head keep the fp32 product.
  bool int_forward = false;
  int uniform_bits = 0;        // 2..8: every linear n-bit absmax instead of the plan (PTQ baselines)
  // Per-tensor overrides (e.g. a bit-budget plan): HF name -> layout.
  std::vector<std::pair<std::string, WeightLayout>> overrides;

  // The layout of one weight: linears follow the plan, embedding / lm_head are 4-bit.
  WeightLayout layout_for(const std::string& name, ParamKind kind) const;
  std::string str() const;
};

// Installs the fake-quant hooks (replacing any previous ones). Validates every matrix first
// (d_in divisible by G), with an error naming the tensor.
void install_quant_hooks(Model& m, const QuantSpec& spec);
void remove_quant_hooks(Model& m);

// Every parameter of the model with its layout, for bit accounting (tied lm_head counted once).
std::vector<MatrixEntry> model_matrices(const Model& m, const QuantSpec& spec);

}  // namespace razor
