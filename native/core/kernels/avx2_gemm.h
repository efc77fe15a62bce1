#pragma once
// Our matrix products for x86 CPUs with AVX2 + FMA + F16C and no AVX-512 (most laptops and
// desktops, AMD before Zen 4). They read the same packed weights as the AVX-512 kernels (the
// layouts of bf16_gemm.h and int8_gemm.h), so a weight is repacked the same way whichever of the
// two runs it; only the tiles differ, sized for AVX2's 16 registers of 8 lanes:
// - half_gemm_avx2: 16-bit float weights (bf16 or f16) in bf16_gemm's pair panels, widened to f32 in
//   registers, times f32 activations with f32 FMA: 6 tokens x 8 outputs per tile. The product is
//   as exact as ggml's f32 one on the same 16-bit weights (activations are not rounded).
// - int8_gemm_avx2 / int8_gemm_avx_vnni: int8_gemm's panels and quantized activations (qx + 128),
//   4 or 6 tokens x 16 outputs per tile. With AVX-VNNI, 256-bit vpdpbusd: exactly int8_gemm's sums.
//   Without, vpmaddubsw + vpmaddwd on weights packed with 7 bits (|qw| ≤ 63, kInt7Levels), so that
//   a pair of products (≤ 2·255·63) fits vpmaddubsw's 16 signed bits without saturating: one
//   instruction fewer per step than the sign trick on 8-bit weights (|w| times sign(w)·x), for
//   half the weights' resolution (measured per-token cosine in docs/performance.md).
// - half_attention_avx2: softmax(q kᵀ) v on the 16-bit tiles, for the layers of either product.
#include <cstdint>

#include "core/kernels/bf16_gemm.h"
#include "core/kernels/int8_gemm.h"

namespace vl::kernels {

// The 16-bit float type of half_gemm_avx2's weights.
enum class HalfType { Bf16, F16 };

struct HalfGemmArgs {
  const float* x = nullptr;     // activations, f32, m rows of k, row stride x_stride (elements)
  int64_t x_stride = 0;
  const uint16_t* w = nullptr;  // pair panels (pack_bf16_panels), n / kPanel of them
  HalfType type = HalfType::Bf16;
  int64_t m = 0, n = 0, k = 0;
  GemmOutput out;
};

// y = epilogue(x · wᵀ + bias) + residual for the share `ith` of `nth` workers. Requires
// cpu_isa_detected().avx2.
void half_gemm_avx2(const HalfGemmArgs& args, int ith, int nth);

// The same as int8_gemm on AVX2, for weights packed with kInt7Levels. Requires cpu_isa_detected().avx2.
void int8_gemm_avx2(const Int8GemmArgs& args, int ith, int nth);

// bf16_attention on AVX2: K and V rounded to f16 (F16C), Q and the softmax weights kept in f32,
// f32 FMA; query rows in blocks, so that the scores never exceed a block. Requires cpu_isa_detected().avx2.
void half_attention_avx2(const Bf16AttentionArgs& args, int ith, int nth);

// The same as int8_gemm with AVX-VNNI (kInt8Levels weights). Requires cpu_isa_detected().avx_vnni.
void int8_gemm_avx_vnni(const Int8GemmArgs& args, int ith, int nth);

}  // namespace vl::kernels
