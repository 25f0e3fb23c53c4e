// Scalar references: the A8 quantizer and the packed-weight GEMM, written as the definition
// (signed codes, int32 dot per group, fp32 scale product, groups summed in order). The SIMD
// tiers are held exactly equal to these on the integer sums.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/qgemm.h"
#include "kernels/qgemm_impl.h"
#include "core/half.h"

namespace razor {

void quantize_a8_ref(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales) {
  const int64_t ng = C / G;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      const float* xg = x + n * C + g * G;
      int8_t* qg = q + n * C + g * G;
      float m = 0.0f;
      for (int k = 0; k < G; ++k) m = std::max(m, std::fabs(xg[k]));
      const float s = std::max(m, 1e-5f) / 127.0f;
      for (int k = 0; k < G; ++k) {
        float r = std::nearbyint(xg[k] / s);
        qg[k] = int8_t(std::min(127.0f, std::max(-127.0f, r)));
      }
      scales[n * ng + g] = s;
    }
  }
}

void qgemm_rows_ref(const QgemmArgs& a, int64_t row_begin, int64_t row_end) {
  const PackedMatrix& W = *a.W;
  const int G = W.desc.G;
  const int64_t d_in = W.desc.d_in, d_out = W.desc.d_out, ng = W.groups();
  std::vector<int8_t> q(static_cast<size_t>(G));
  for (int64_t i = row_begin; i < row_end; ++i) {
    const RowKind kind = W.row_kind(i);
    const int64_t gb = group_code_bytes(kind, G);
    const uint8_t* row = W.row(i);
    const uint16_t* sw = W.row_scales(i);
    for (int64_t n = 0; n < a.N; ++n) {
      const int8_t* x = a.qx + n * d_in;
      const float* sx = a.sx + n * ng;
      float acc = 0.0f;
      for (int64_t g = 0; g < ng; ++g) {
        decode_group_ref(kind, G, row + g * gb, q.data());
        int32_t dot = 0;
        for (int k = 0; k < G; ++k) dot += int32_t(q[k]) * int32_t(x[g * G + k]);
        acc += float(dot) * (f16_to_f32(sw[g]) * sx[g]);
      }
      a.y[n * d_out + i] = acc;
    }
  }
}

void qgemm_ref(const PackedMatrix& W, const int8_t* qx, const float* sx, int64_t N, float* y) {
  QgemmArgs a{&W, qx, sx, nullptr, N, y};
  qgemm_rows_ref(a, 0, W.desc.d_out);
}

}  // namespace razor
