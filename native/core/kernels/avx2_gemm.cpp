#include "core/kernels/avx2_gemm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_AVX2_KERNEL 1
#include "core/kernels/simd_math.h"
#endif

namespace vl::kernels {

#ifdef VL_HAVE_AVX2_KERNEL

#define VL_TARGET __attribute__((target("avx2,fma,f16c")))

// Outputs per tile: one register of 8 lanes (a quarter of a panel).
constexpr int64_t kColumns = 8;

// Tiles of up to ROWS rows for one quarter of a panel, indexed by their row count.
template <typename TileFn, template <int> class Tile, int... R>
static constexpr std::array<TileFn, sizeof...(R) + 1> tile_table(std::integer_sequence<int, R...>) {
  return {nullptr, &Tile<R + 1>::run...};
}

// 16 consecutive 16-bit weights of a pair panel (outputs c..c+7, inputs 2j and 2j+1 each) as
// f32: outputs c..c+3 in `lo`, c+4..c+7 in `hi`, each output's pair side by side.
template <HalfType T>
VL_TARGET static inline __attribute__((always_inline)) void widen_pairs(const uint16_t* w, __m256& lo, __m256& hi) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 8));
  if constexpr (T == HalfType::F16) {
    lo = _mm256_cvtph_ps(a);
    hi = _mm256_cvtph_ps(b);
  } else {  // a bf16 is the high half of an f32
    lo = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(a), 16));
    hi = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
  }
}

// ROWS rows of x times 8 outputs of a pair panel. The accumulators hold each output's even-input
// and odd-input sums side by side (the broadcast is an (x[2j], x[2j+1]) pair); one horizontal add
// at the end joins them.
template <HalfType T>
struct HalfTile {
  template <int ROWS>
  struct Rows {
    VL_TARGET static void run(const float* x, int64_t x_stride, const uint16_t* w, int64_t k_pairs, const GemmOutput& out) {
      __m256 acc[ROWS][2];
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
      for (int64_t j = 0; j < k_pairs; ++j) {
        __m256 lo, hi;
        widen_pairs<T>(w + j * 2 * kPanel, lo, hi);
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; ++r) {
          const __m256 pair = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(x + r * x_stride + 2 * j)));
          acc[r][0] = _mm256_fmadd_ps(lo, pair, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(hi, pair, acc[r][1]);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) {
        // hadd gives outputs 0 1 4 5 | 2 3 6 7; the 64-bit permute puts them in order
        const __m256 sums = _mm256_hadd_ps(acc[r][0], acc[r][1]);
        finish_tile_row(out, r, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(sums), 0xD8)));
      }
    }
  };
};

constexpr int kHalfTileRows = 6;  // 12 accumulators + 2 weights + 1 broadcast of 16 registers

using HalfTileFn = void (*)(const float*, int64_t, const uint16_t*, int64_t, const GemmOutput&);

template <HalfType T>
VL_TARGET static void half_block(const HalfGemmArgs& a, const GemmShare& share) {
  static constexpr auto tiles =
      tile_table<HalfTileFn, HalfTile<T>::template Rows>(std::make_integer_sequence<int, kHalfTileRows>());
  for (int64_t p = share.p0; p < share.p1; ++p) {
    const uint16_t* panel = a.w + p * a.k * kPanel;
    for (int64_t m = share.m0; m < share.m1; m += kHalfTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kHalfTileRows, share.m1 - m));
      for (int64_t c = 0; c < kPanel; c += kColumns) {
        tiles[rows](a.x + m * a.x_stride, a.x_stride, panel + 2 * c, a.k / 2, output_tile(a.out, m, p * kPanel + c));
      }
    }
  }
}

void half_gemm_avx2(const HalfGemmArgs& args, int ith, int nth) {
  const GemmShare share = gemm_share(args.m, args.n / kPanel, kHalfTileRows, ith, nth);
  if (args.type == HalfType::F16) {
    half_block<HalfType::F16>(args, share);
  } else {
    half_block<HalfType::Bf16>(args, share);
  }
}

// ---------------------------------------------------------------------------------------------
// int8: one step multiplies 4 inputs of 8 outputs (32 bytes of a panel) by 4 broadcast
// activations (qx + 128, unsigned), adding into 8 int32 sums.

// vpmaddubsw + vpmaddwd: pairs of u8 x s8 products summed into i16 (the weights have 7 bits, so
// no pair saturates), then pairs of those into i32. In asm, with one scratch register per step:
// with intrinsics GCC 12 computes all of a tile's vpmaddubsw first, needs a register per product
// and spills an accumulator to the stack on every step (a store-to-load round trip per step).
struct MaddDot {
  static constexpr int kRows = 4;  // 8 accumulators + 2 weights + broadcast + ones + product
  VL_TARGET static inline __attribute__((always_inline)) __m256i step(__m256i acc, __m256i x, __m256i w, __m256i ones) {
    __m256i product;
    __asm__("vpmaddubsw %[w], %[x], %[p]\n\t"
            "vpmaddwd %[ones], %[p], %[p]\n\t"
            "vpaddd %[p], %[acc], %[acc]"
            : [acc] "+x"(acc), [p] "=&x"(product)
            : [x] "x"(x), [w] "x"(w), [ones] "x"(ones));
    return acc;
  }
};

// AVX-VNNI's vpdpbusd: the same four products and their sum in one instruction, 8-bit weights. In
// asm (VEX-encoded, {vex}: the EVEX form needs AVX-512 VL), so that the tiles need no avxvnni target.
struct VnniDot {
  static constexpr int kRows = 6;  // 12 accumulators + 2 weights + broadcast
  VL_TARGET static inline __attribute__((always_inline)) __m256i step(__m256i acc, __m256i x, __m256i w, __m256i) {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w));
    return acc;
  }
};

// ROWS quantized rows times 16 outputs (two registers) of an int8 panel, all blocks: per block the
// integer sums in registers, then Σ (qx + 128)·qw − 128·Σ qw scaled into f32 sums.
template <typename Dot>
struct Int8Tile {
  template <int ROWS>
  struct Rows {
    VL_TARGET static void run(const uint8_t* x, int64_t x_stride, const uint8_t* panel, int64_t k, int64_t column,
                              const GemmOutput& out) {
      const Int8PanelLayout layout(k);
      const auto* w_scales = reinterpret_cast<const float*>(panel + layout.scales) + column;
      const auto* w_sums = reinterpret_cast<const int32_t*>(panel + layout.sums) + column;
      const auto* x_scales = reinterpret_cast<const float*>(x + k);  // row r's block b: x_scales[r * quad_stride + b]
      const auto* quads = reinterpret_cast<const int32_t*>(x);         // four activations = one int32
      const int64_t quad_stride = x_stride / 4;
      const __m256i ones = _mm256_set1_epi16(1);
      alignas(32) float sums[ROWS][2 * kColumns] = {};
      for (int64_t b = 0; b < layout.blocks; ++b) {
        const uint8_t* wb = panel + b * kInt8Block * kPanel + column * 4;
        const int32_t* xb = quads + b * kInt8Block / 4;
        __m256i acc[ROWS][2];
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        for (int64_t q = 0; q < kInt8Block / 4; ++q) {
          const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + q * 4 * kPanel));
          const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + q * 4 * kPanel + 32));
#pragma GCC unroll 8
          for (int r = 0; r < ROWS; ++r) {
            const __m256i xq = _mm256_set1_epi32(xb[r * quad_stride + q]);
            acc[r][0] = Dot::step(acc[r][0], xq, w0, ones);
            acc[r][1] = Dot::step(acc[r][1], xq, w1, ones);
          }
        }
        const __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_sums + b * kPanel));
        const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_sums + b * kPanel + kColumns));
        const __m256 s0 = _mm256_loadu_ps(w_scales + b * kPanel), s1 = _mm256_loadu_ps(w_scales + b * kPanel + kColumns);
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; ++r) {
          const __m256 sx = _mm256_set1_ps(x_scales[r * quad_stride + b]);
          const __m256 v0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][0], c0));
          const __m256 v1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][1], c1));
          _mm256_store_ps(sums[r], _mm256_fmadd_ps(v0, _mm256_mul_ps(s0, sx), _mm256_load_ps(sums[r])));
          _mm256_store_ps(sums[r] + kColumns,
                          _mm256_fmadd_ps(v1, _mm256_mul_ps(s1, sx), _mm256_load_ps(sums[r] + kColumns)));
        }
      }
      const GemmOutput high = output_tile(out, 0, kColumns);
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) {
        finish_tile_row(out, r, _mm256_load_ps(sums[r]));
        finish_tile_row(high, r, _mm256_load_ps(sums[r] + kColumns));
      }
    }
  };
};

using Int8TileFn = void (*)(const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t, const GemmOutput&);

template <typename Dot>
static void int8_gemm_with(const Int8GemmArgs& a, int ith, int nth) {
  static constexpr auto tiles =
      tile_table<Int8TileFn, Int8Tile<Dot>::template Rows>(std::make_integer_sequence<int, Dot::kRows>());
  const GemmShare share = gemm_share(a.m, a.n / kPanel, Dot::kRows, ith, nth);
  const auto x_stride = static_cast<int64_t>(int8_row_bytes(a.k));
  const int64_t panel_bytes = Int8PanelLayout(a.k).bytes();
  for (int64_t p = share.p0; p < share.p1; ++p) {
    for (int64_t m = share.m0; m < share.m1; m += Dot::kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(Dot::kRows, share.m1 - m));
      for (int64_t c = 0; c < kPanel; c += 2 * kColumns) {
        tiles[rows](a.x + m * x_stride, x_stride, a.w + p * panel_bytes, a.k, c, output_tile(a.out, m, p * kPanel + c));
      }
    }
  }
}

void int8_gemm_avx2(const Int8GemmArgs& args, int ith, int nth) { int8_gemm_with<MaddDot>(args, ith, nth); }

void int8_gemm_avx_vnni(const Int8GemmArgs& args, int ith, int nth) { int8_gemm_with<VnniDot>(args, ith, nth); }

// ---------------------------------------------------------------------------------------------
// Attention: per (item, head), K and V packed once into f16 pair panels; then per block of query
// rows S = Q Kᵀ (Q read in f32 where it is), softmax in place, O = P V, all with the 16-bit tiles.

// n f32 -> f16 (round to nearest even), 8 at a time.
VL_TARGET static void f16_from_f32(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) dst[i] = static_cast<uint16_t>(_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT));
}

// Lanes [0, n) of 8 set (n < 8): the tail of a row.
VL_TARGET static inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// row[0, n_kv) = softmax(scale · row[0, n_kv)), in place; the padding after it stays 0.
VL_TARGET static void softmax_in_place(float* row, int64_t n_kv, float scale) {
  const int64_t whole = n_kv / 8 * 8;
  const __m256i tail = first_lanes(n_kv - whole);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  __m256 max = neg_inf;
  for (int64_t j = 0; j < whole; j += 8) max = _mm256_max_ps(max, _mm256_loadu_ps(row + j));
  if (whole < n_kv) max = _mm256_max_ps(max, _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(row + whole, tail), _mm256_castsi256_ps(tail)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(max), _mm256_extractf128_ps(max, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  const __m256 shift = _mm256_set1_ps(_mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4))) * scale), vscale = _mm256_set1_ps(scale);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < whole; j += 8) {
    const __m256 e = exp_ps(_mm256_fmsub_ps(_mm256_loadu_ps(row + j), vscale, shift));
    _mm256_storeu_ps(row + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (whole < n_kv) {
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_fmsub_ps(_mm256_maskload_ps(row + whole, tail), vscale, shift)), _mm256_castsi256_ps(tail));
    _mm256_maskstore_ps(row + whole, tail, e);
    sum = _mm256_add_ps(sum, e);
  }
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  const __m256 inv = _mm256_set1_ps(1.0f / _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4))));
  for (int64_t j = 0; j < whole; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), inv));
  if (whole < n_kv) _mm256_maskstore_ps(row + whole, tail, _mm256_mul_ps(_mm256_maskload_ps(row + whole, tail), inv));
}

// Rows [0, m) of x (f32, stride x_stride) times `panels` f16 pair panels of k_pairs -> y (f32).
static void half_panels_product(const float* x, int64_t x_stride, int64_t m, const uint16_t* w, int64_t k_pairs,
                                int64_t panels, float* y, int64_t y_stride) {
  static constexpr auto tiles =
      tile_table<HalfTileFn, HalfTile<HalfType::F16>::template Rows>(std::make_integer_sequence<int, kHalfTileRows>());
  GemmOutput out;
  out.y = y;
  out.y_stride = y_stride;
  for (int64_t p = 0; p < panels; ++p) {
    for (int64_t r = 0; r < m; r += kHalfTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kHalfTileRows, m - r));
      for (int64_t c = 0; c < kPanel; c += kColumns) {
        tiles[rows](x + r * x_stride, x_stride, w + p * k_pairs * 2 * kPanel + 2 * c, k_pairs, output_tile(out, r, p * kPanel + c));
      }
    }
  }
}

// Query rows per block: the scores of one block stay in L1 / L2 (48 x 288 f32 at ViT sizes).
constexpr int64_t kQueryBlock = 8 * kHalfTileRows;

struct HalfAttentionScratch {
  std::vector<uint16_t> k_panels, v_panels, row;
  std::vector<float> scores, context;
};

static void half_attention_head(const Bf16AttentionArgs& a, int64_t item, int64_t head, HalfAttentionScratch& s) {
  const int64_t hd = a.head_dim, padded_kv = round_up(a.n_kv, kPanel), padded_dim = round_up(hd, kPanel);
  pack_key_panels(a.k.data + item * a.k.batch_stride + head * hd, a.k.row_stride, a.n_kv, hd, padded_kv, f16_from_f32,
                  s.k_panels, s.row);
  pack_value_panels(a.v.data + item * a.v.batch_stride + head * hd, a.v.row_stride, a.n_kv, hd, padded_kv, padded_dim,
                    f16_from_f32, s.v_panels, s.row);
  s.scores.resize(static_cast<size_t>(kQueryBlock * padded_kv));
  s.context.resize(static_cast<size_t>(kQueryBlock * padded_dim));
  const float* q = a.q.data + item * a.q.batch_stride + head * hd;
  const int64_t width = a.heads * hd;
  for (int64_t q0 = 0; q0 < a.n_q; q0 += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, a.n_q - q0);
    half_panels_product(q + q0 * a.q.row_stride, a.q.row_stride, rows, s.k_panels.data(), hd / 2, padded_kv / kPanel,
                        s.scores.data(), padded_kv);
    // the padding keys' scores are 0 (zero panels): softmax over the real keys only, padding set to 0
    for (int64_t i = 0; i < rows; ++i) {
      float* row = s.scores.data() + i * padded_kv;
      softmax_in_place(row, a.n_kv, a.scale);
      std::fill(row + a.n_kv, row + padded_kv, 0.0f);
    }
    half_panels_product(s.scores.data(), padded_kv, rows, s.v_panels.data(), padded_kv / 2, padded_dim / kPanel,
                        s.context.data(), padded_dim);
    float* out = a.out + (item * a.n_q + q0) * width + head * hd;
    for (int64_t i = 0; i < rows; ++i) {
      std::copy_n(s.context.data() + i * padded_dim, hd, out + i * width);
    }
  }
}

void half_attention_avx2(const Bf16AttentionArgs& args, int ith, int nth) {
  thread_local HalfAttentionScratch scratch;
  for (int64_t task = ith; task < args.batch * args.heads; task += nth) {
    half_attention_head(args, task / args.heads, task % args.heads, scratch);
  }
}

#else

void half_gemm_avx2(const HalfGemmArgs&, int, int) {}
void int8_gemm_avx2(const Int8GemmArgs&, int, int) {}
void int8_gemm_avx_vnni(const Int8GemmArgs&, int, int) {}
void half_attention_avx2(const Bf16AttentionArgs&, int, int) {}

#endif

}  // namespace vl::kernels
