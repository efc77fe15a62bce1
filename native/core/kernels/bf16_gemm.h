#pragma once
// A bf16 matrix product for the encoders' linear layers on x86 CPUs with AVX-512 BF16
// (vdpbf16ps), the shape ggml's own CPU kernels are slowest at: many tokens (a batch of frames)
// times a large weight matrix. ggml computes such a product as independent dot products; this
// kernel keeps a 12-token x 32-output tile in registers, so each weight load feeds 12 products
// and each activation load feeds 32.
//
// Weights are repacked once, in place, into panels of kPanel output rows, pairs of inputs
// interleaved (vdpbf16ps reads pairs):
//   panel p, k-pair j, output r of the panel -> w[p*kPanel + r][2j], w[p*kPanel + r][2j + 1]
// A panel covers kPanel consecutive rows of the original [K, N] matrix (ggml order), so the
// repacked tensor is the same size and a slice of whole panels (rows first..first+count with both
// multiples of kPanel) is still a contiguous range of bytes.
#include <algorithm>
#include <cstdint>
#include <vector>

namespace vl::kernels {

// Output rows per weight panel.
constexpr int64_t kPanel = 32;

// Whether a [k, n] weight matrix (ggml order: k inputs, n outputs) can be repacked.
inline bool bf16_packable(int64_t k, int64_t n) { return k % 2 == 0 && n % kPanel == 0 && k > 0 && n > 0; }

// Repacks 16-bit weights [k, n] (row-major: n rows of k; bf16, or f16 for half_gemm_avx2) into
// panels, in place.
void pack_bf16_panels(uint16_t* weights, int64_t k, int64_t n);

// f16 weights -> bf16 (rounding to nearest even), in place: f16 files on AVX-512 BF16 CPUs.
void bf16_from_f16_in_place(uint16_t* values, int64_t n);

// What happens to each output after the product and the bias.
enum class Epilogue { None, GeluErf };

// Where a product's outputs go: y = epilogue(x · wᵀ + bias) + residual.
struct GemmOutput {
  const float* bias = nullptr;      // [n] or null
  Epilogue epilogue = Epilogue::None;
  const float* residual = nullptr;  // m rows of n (row stride residual_stride) or null
  int64_t residual_stride = 0;
  float* y = nullptr;               // m rows of n, row stride y_stride (elements)
  int64_t y_stride = 0;
};

struct Bf16GemmArgs {
  const uint16_t* x = nullptr;  // activations, bf16, m rows of k, row stride x_stride (elements)
  int64_t x_stride = 0;
  const uint16_t* w = nullptr;  // packed weights, n / kPanel panels
  int64_t m = 0, n = 0, k = 0;
  GemmOutput out;
};

// The outputs of a tile: from row m and output column `column` on.
inline GemmOutput output_tile(const GemmOutput& out, int64_t m, int64_t column) {
  GemmOutput tile = out;
  if (tile.bias) tile.bias += column;
  if (tile.residual) tile.residual += m * out.residual_stride + column;
  tile.y += m * out.y_stride + column;
  return tile;
}

// A worker's share of a product: output rows [m0, m1) for panels [p0, p1).
struct GemmShare {
  int64_t m0, m1, p0, p1;
};

// Split by panels (each worker keeps its panels in its own L2) unless there are too few; then by
// whole tiles of `tile_rows` rows.
inline GemmShare gemm_share(int64_t m, int64_t panels, int64_t tile_rows, int ith, int nth) {
  if (panels >= 2 * nth || m < tile_rows * nth) {
    const int64_t per = (panels + nth - 1) / nth;
    const int64_t p0 = std::min(panels, ith * per);
    return {0, m, p0, std::min(panels, p0 + per)};
  }
  const int64_t per = ((m + tile_rows - 1) / tile_rows + nth - 1) / nth * tile_rows;
  const int64_t m0 = std::min(m, ith * per);
  return {m0, std::min(m, m0 + per), 0, panels};
}

// n f32 -> bf16, rounding to nearest even. Requires cpu_isa_detected().avx512_bf16.
void bf16_from_f32(const float* src, uint16_t* dst, int64_t n);

// y = epilogue(x · wᵀ + bias) + residual for the share `ith` of `nth` workers (split by weight panels).
// Requires cpu_isa_detected().avx512_bf16.
void bf16_gemm(const Bf16GemmArgs& args, int ith, int nth);

// One f32 operand of attention: rows of `heads * head_dim` values, heads side by side.
struct AttentionOperand {
  const float* data = nullptr;
  int64_t row_stride = 0;    // elements between consecutive tokens
  int64_t batch_stride = 0;  // elements between batch items
};

struct Bf16AttentionArgs {
  AttentionOperand q, k, v;
  float* out = nullptr;  // [batch][n_q][heads * head_dim], contiguous
  int64_t n_q = 0, n_kv = 0, batch = 0, heads = 0, head_dim = 0;
  float scale = 1;  // applied to q·k before the softmax
};

// Converts n f32 to a 16-bit float type (bf16_from_f32, or f16 for half_attention_avx2).
using HalfConverter = void (*)(const float* src, uint16_t* dst, int64_t n);

inline int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// One (item, head) of attention as the "weights" of the two products, in pair panels:
// K [n_kv, head_dim] as panels of kPanel keys (padded_kv of them, zeros past n_kv) for S = Q Kᵀ,
// and V [n_kv, head_dim] as panels of kPanel dims (padded_dim), key pairs interleaved, for O = P V.
// `row` is scratch for one converted row.
void pack_key_panels(const float* k, int64_t row_stride, int64_t n_kv, int64_t head_dim, int64_t padded_kv,
                     HalfConverter convert, std::vector<uint16_t>& panels, std::vector<uint16_t>& row);
void pack_value_panels(const float* v, int64_t row_stride, int64_t n_kv, int64_t head_dim, int64_t padded_kv,
                       int64_t padded_dim, HalfConverter convert, std::vector<uint16_t>& panels,
                       std::vector<uint16_t>& row);

// Whether bf16_attention (and half_attention_avx2) handles this head size.
inline bool bf16_attention_supports(int64_t head_dim) { return head_dim % 2 == 0 && head_dim > 0; }

// softmax(scale · q kᵀ) v per batch item and head, with q, k, softmax weights and v rounded to
// bf16 and f32 accumulation; the share `ith` of `nth` workers (split by batch item x head).
// Requires cpu_isa_detected().avx512_bf16.
void bf16_attention(const Bf16AttentionArgs& args, int ith, int nth);

}  // namespace vl::kernels
