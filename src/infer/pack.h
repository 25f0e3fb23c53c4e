// The packed model: every quantized weight of a decoder as a PackedMatrix (kernels/qformat.h),
// norms in f32, the HF config and the tokenizer bytes; packing from a latent-weight Model and
// the `.razor` file round trip (io/razor_file.h).
//
// Packing never re-quantizes: the codes and fp16 scales are exactly quantize_weight's (the
// single source of the integers, NUMERICS.md §1), laid into blocks by pack_matrix. Linears
// follow the precision plan (NUMERICS.md §2); the embedding and lm_head are int4 with the same
// G (a tied lm_head is the embedding matrix itself).
//
// File layout (sections of the .razor JSON header):
//   "config"  the HF config.json object
//   "layout"  {"format": "razor-packed", "rho", "P", "G", "beta", "ternary": "2bit"|"5trit",
//              "a8", "kv8", "tensors": {name: layout string}}
//   tensors   "<hf name>.codes" u8 [bytes] + "<hf name>.scales" f16 [d_out, d_in/G] per matrix
//             (extra fields: layout, P, G, d_out, d_in); "<hf name>" f32 [n] per norm;
//             "tokenizer.json" u8 [bytes] when the checkpoint had one;
//             "tokenizer_config.json" u8 [bytes] (chat template, special tokens) when there is one.
//             Optional and additive: files without it load as before, and older readers skip it.
// Deliberately not here: the forward (infer/engine.h), sampling (infer/generate.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/hf_config.h"
#include "kernels/qformat.h"
#include "nn/tensor_table.h"
#include "quant/plan.h"

namespace razor {

class Model;

struct PackedLayer {
  std::vector<float> attn_norm, q_norm, k_norm, mlp_norm;  // [C], [D], [D], [C]
  PackedMatrix q, k, v, o, gate, up, down;
};

struct PackOptions {
  PrecisionPlan plan;      // rho, G, beta of the linears
  bool ternary5 = false;   // all-ternary tensors in 5 trits / byte instead of 2 bits
  bool a8 = false, kv8 = false;  // recorded: how the student was trained
  // Per-tensor layouts that replace the plan's (a bit-budget plan, `razor plan`): HF name ->
  // layout. Their group must be plan.group (the A8 activation groups are the model's G).
  std::vector<std::pair<std::string, WeightLayout>> overrides;
};

struct PackedModel {
  ModelConfig cfg;
  PackOptions opt;
  PackedMatrix embed;    // int4 [V, C]
  PackedMatrix lm_head;  // int4 [V, C]; empty when tied (head() is embed)
  std::vector<PackedLayer> layers;
  std::vector<float> final_norm;  // [C]
  std::string tokenizer_json;     // "" when none
  std::string tokenizer_config_json;  // "" when none (GGUF export writes its chat template)
  uint64_t file_bytes = 0;        // size of the file it was loaded from (0: built in memory)

  const PackedMatrix& head() const { return cfg.tie_word_embeddings ? embed : lm_head; }
  // Every matrix with its HF name, in file order (tied: no lm_head entry).
  std::vector<std::pair<std::string, const PackedMatrix*>> matrices() const;
  // Where a row of the tensor table (nn/tensor_table.h) lives: its matrix (embedding, linear,
  // head rows) or its weights (norm rows); nullptr for a row of the other kind. Needs layers
  // sized to the config; a bias row is refused (refuse_unsupported) with `what` in the error.
  PackedMatrix* matrix_slot(const TensorSpec& t, const std::string& what);
  std::vector<float>* norm_slot(const TensorSpec& t, const std::string& what);
  // Every norm weight with its HF name, in file order.
  std::vector<std::pair<std::string, const std::vector<float>*>> norms() const;
  // Weight bytes (codes + scales) one decoded token streams: every linear, the lm_head and
  // one embedding row.
  int64_t decode_bytes_per_token() const;
  // Codes + scales of every matrix plus the norms (what sits in memory).
  int64_t packed_bytes() const;

  // Opens and validates a .razor file: container checks (io/razor_file.h), then every tensor's
  // presence, dtype, shape and size against the config and layout. Errors name file and tensor.
  static PackedModel load(const std::string& path);
  // Writes the .razor file atomically. Refused once the rows are released (prepare_for_engine).
  void save(const std::string& path) const;
  // For a model that only the engine will use (generate, bench, eval of a .razor): builds the
  // kernels' decode copies of the matrices the engine multiplies (qgemm_prepare; on AVX2, 8-row
  // tiles) one matrix at a time and releases each one's packed rows once its copy exists
  // (qgemm_release_rows), so the weights are held once. Without it the engine builds the copies
  // itself and both forms stay in memory. No-op where the active tier keeps no copy.
  void prepare_for_engine();
};

// Quantizes every weight of m with opt's plan and packs it. Throws naming the tensor when a
// dimension is not divisible by G (or G is not 64, 128 or 256).
PackedModel pack_model(const Model& m, const PackOptions& opt);

}  // namespace razor
