// Internal interface between qgemm.cpp (dispatch, threading) and the per-ISA kernel files.
// Each tier computes a range of output rows for all tokens; qgemm.cpp splits rows across
// threads and precomputes the per-(token, group) activation sums the offset-code trick needs.
#pragma once
#include <cstdint>

#include "kernels/qformat.h"

namespace razor {

struct QgemmArgs {
  const PackedMatrix* W;
  const int8_t* qx;     // [N, d_in]
  const float* sx;      // [N, d_in / G]
  const int32_t* sumx;  // [N, d_in / G]: sum of q_x over each group
  int64_t N;
  float* y;  // [N, d_out]
};

using QgemmRowsFn = void (*)(const QgemmArgs& a, int64_t row_begin, int64_t row_end);
using QuantA8Fn = void (*)(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);

// The AVX-512 tier's GFNI setting (qgemm_avx512_set_gfni).
bool qgemm_avx512_gfni();
// Whether the AVX2 tier's one-token product uses a matrix's decode copy (qgemm_avx2_set_tiles).
bool qgemm_avx2_tiles();

void qgemm_rows_ref(const QgemmArgs& a, int64_t row_begin, int64_t row_end);
void qgemm_rows_avx2(const QgemmArgs& a, int64_t row_begin, int64_t row_end);
void qgemm_rows_avx512(const QgemmArgs& a, int64_t row_begin, int64_t row_end);
void qgemm_rows_neon(const QgemmArgs& a, int64_t row_begin, int64_t row_end);
void qgemm_rows_dotprod(const QgemmArgs& a, int64_t row_begin, int64_t row_end);
void quantize_a8_avx2(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);
void quantize_a8_avx512(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);
void quantize_a8_neon(const float* x, int64_t N, int64_t C, int G, int8_t* q, float* scales);

}  // namespace razor
