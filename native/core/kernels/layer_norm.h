#pragma once
// LayerNorm written straight into the input rows of our products (bf16 rows for bf16_gemm,
// quantized rows for int8_gemm): one pass instead of ggml's norm, mul, add and conversion, for
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

// The same as quantized rows (int8_row_bytes(k) each), with `isa`'s instructions (k a multiple of
// kInt8Block, as int8_packable requires).
void layer_norm_to_u8(const LayerNormRows& a, int64_t begin, int64_t end, uint8_t* out, Isa isa);

}  // namespace vl::kernels
