#pragma once
// LayerNorm written straight into the input rows of our products (bf16 rows for bf16_gemm,
// f32 rows for half_gemm_avx2, quantized rows for the int8 kernels): one pass instead of ggml's norm, mul, add and conversion, for
// the pre-LN blocks whose normalised activations feed a single linear layer.
#include <cstdint>

#include "core/kernels/cpu_isa.h"

namespace vl::kernels {

struct LayerNormRows {
  const float* x = nullptr;  // rows of k, row stride x_stride (elements)
  int64_t x_stride = 0, k = 0;
  const float* weight = nullptr;  // [k]
  const float* bias = nullptr;    // [k]
  float eps = 0;
};

// Rows [begin, end) of (x - mean) / sqrt(var + eps) · weight + bias as bf16 rows of k.
// Requires cpu_isa_detected().avx512_bf16.
void layer_norm_to_bf16(const LayerNormRows& a, int64_t begin, int64_t end, uint16_t* out);

// The same as f32 rows of k, with AVX2 (k a multiple of 8): the input of half_gemm_avx2.
// Requires cpu_isa_detected().avx2.
void layer_norm_to_f32(const LayerNormRows& a, int64_t begin, int64_t end, float* out);

// The same as quantized rows (int8_row_bytes(k) each) for the int8 kernel of `isa` (k a multiple
// of kInt8Block, as int8_packable requires).
void layer_norm_to_u8(const LayerNormRows& a, int64_t begin, int64_t end, uint8_t* out, Isa isa);

}  // namespace vl::kernels
