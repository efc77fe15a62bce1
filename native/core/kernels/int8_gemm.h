#pragma once
// An 8-bit matrix product for the encoders' linear layers on x86 CPUs with AVX-512 VNNI
// (vpdpbusd: 64 byte products per instruction, twice the rate of vdpbf16ps), for projectors
// stored as q8_0. Same tiling as bf16_gemm (12 tokens x 32 outputs in registers); the scales
// are per block of kInt8Block inputs, for activations (per token) and weights (per output):
//   y[m][n] = Σ_blocks sx[m][b] · sw[n][b] · Σ_{k in b} qx[m][k] · qw[n][k]
// Activations are quantized per call (quantize_rows); vpdpbusd wants them unsigned, so they
// are stored as qx + 128 and the weights carry 128 · Σ qw per block to subtract.
//
// Packed weights, per panel of kPanel outputs, all blocks' bytes then all scales then all sums:
//   [blocks][k/4 within the block][kPanel][4] int8 | [blocks][kPanel] f32 | [blocks][kPanel] i32
// which is exactly the size of the same rows in q8_0 (34 bytes per 32 weights), so q8_0 weights
// are repacked in place and a slice of whole panels stays a contiguous range of bytes.
#include <cstddef>
#include <cstdint>

#include "core/kernels/bf16_gemm.h"
#include "core/kernels/cpu_isa.h"

namespace vl::kernels {

// Inputs per scale.
constexpr int64_t kInt8Block = 128;

// Whether q8_0 weights [k, n] can be repacked.
inline bool int8_packable(int64_t k, int64_t n) { return k % kInt8Block == 0 && n % kPanel == 0 && k > 0 && n > 0; }

// The largest |qw| of packed weights: 8 bits for vpdpbusd, 7 for int8_gemm_avx2's vpmaddubsw.
constexpr int kInt8Levels = 127, kInt7Levels = 63;

// Repacks q8_0 weights [k, n] (n rows of k) into int8 panels with per-block scales and
// |qw| ≤ levels, in place (the panels take exactly the bytes of the rows). Requires int8_packable(k, n).
void pack_q8_0_panels(void* weights, int64_t k, int64_t n, int levels);

// Byte offsets inside one packed panel of k inputs.
struct Int8PanelLayout {
  int64_t blocks;
  int64_t scales;  // f32 [blocks][kPanel]
  int64_t sums;    // i32 [blocks][kPanel]
  explicit Int8PanelLayout(int64_t k)
      : blocks(k / kInt8Block), scales(k * kPanel), sums(k * kPanel + blocks * kPanel * 4) {}
  int64_t bytes() const { return sums + blocks * kPanel * 4; }
};

// Bytes of one quantized activation row: k values qx + 128 (unsigned, for vpdpbusd and
// vpmaddubsw), then k / kInt8Block f32 scales.
inline size_t int8_row_bytes(int64_t k) { return static_cast<size_t>(k + 4 * (k / kInt8Block)); }

// Rows [begin, end) of x (f32, row stride x_stride elements, k per row) quantized into `out`
// (row stride int8_row_bytes(k)) for the int8 kernel of `isa`.
void quantize_rows(const float* x, int64_t x_stride, int64_t k, int64_t begin, int64_t end, uint8_t* out, Isa isa);

struct Int8GemmArgs {
  const uint8_t* x = nullptr;  // quantized activations, m rows of int8_row_bytes(k)
  const uint8_t* w = nullptr;  // packed weights
  int64_t m = 0, n = 0, k = 0;
  GemmOutput out;
};

// y = epilogue(x · wᵀ + bias) + residual for the share `ith` of `nth` workers. Requires cpu_isa_detected().avx512_vnni.
void int8_gemm(const Int8GemmArgs& args, int ith, int nth);

}  // namespace vl::kernels
