// GGUF <-> packed model: export of a PackedModel (a `.razor` student) through gguf/export,
// and the check that a written file holds exactly razor's integers and scales.
//
// Export unpacks every PackedMatrix to its int8 codes and fp16 scales (unpack_matrix is exact)
// and hands them to export_gguf with the declared row kinds, so the GGUF type of each tensor is
// decided by the one lossless rule of gguf/blocks.h: ternary G = 256 -> TQ2_0 / TQ1_0, int4
// -> Q4_0, mixed rows and ternary G = 64 -> Q4_0 (widened, reported). Nothing is re-quantized.
// Deliberately not here: the container and block codecs (gguf/gguf, gguf/blocks), the .razor format
// (infer/pack), llama.cpp itself (built outside the repository, docs/gguf.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "infer/pack.h"
#include "gguf/gguf.h"
#include "gguf/export.h"

namespace razor {

// The unpacked integers of a PackedModel and the ExportTensors that point into them (norms
// point into the PackedModel, which must outlive this).
struct PackedExport {
  std::vector<std::vector<int8_t>> codes;  // per matrix [d_out, d_in]
  std::vector<std::vector<float>> scales;  // per matrix [d_out, d_in / G]
  std::vector<ExportTensor> tensors;       // HF names, matrices first, then norms
};
PackedExport packed_export_tensors(const PackedModel& pm);

// The ternary GGUF type a packed model asks for: TQ1_0 when its all-ternary tensors are stored
// in 5 trits per byte, else TQ2_0.
GgmlType default_ternary_type(const PackedModel& pm);

// What reading a written file back found.
struct GgufVerify {
  int tensors = 0;            // tensors compared
  int64_t values = 0;         // weights compared
  int64_t code_mismatch = 0;  // integer codes that differ (block types)
  int64_t scale_mismatch = 0; // block scales that differ from the group scale (block types)
  int64_t value_mismatch = 0; // dequantized values that differ from razor's q * s (every type)
  double max_abs_error = 0;   // max |dequantized - q * s| over every weight
  bool exact() const { return code_mismatch == 0 && scale_mismatch == 0 && value_mismatch == 0; }
  std::string text() const;
};
// Compares every tensor of `tensors` with what `f` holds under its GGUF name (rows through the
// llama q/k permutation when f's architecture is llama): block types by their integers and
// scales, every type by dequantized value. Throws naming the tensor when one is missing or
// has another shape.
GgufVerify verify_gguf(const GgufFile& f, const std::vector<ExportTensor>& tensors);

// Exports pm to `path` (tokenizer_json: the tokenizer to write; pm.tokenizer_json when empty;
// opt.tokenizer_config: pm.tokenizer_config_json when null) and, when verify is set, reads the
// file back and fills *check.
ExportReport export_packed_gguf(const std::string& path, const PackedModel& pm, std::string tokenizer_json,
                                const ExportOptions& opt, GgufVerify* check = nullptr);

}  // namespace razor
