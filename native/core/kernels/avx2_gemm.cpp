#include "core/kernels/avx2_gemm.h"

#include <algorithm>
#include <array>
#include <utility>

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
// int8

// ROWS quantized rows times 8 outputs of an int8 panel, all blocks: per block, the integer sums
// Σ qx·qw in registers, then scaled into f32 sums.
template <int ROWS>
struct Int8Tile {
  VL_TARGET static void run(const uint8_t* x, int64_t x_stride, const uint8_t* panel, int64_t k, int64_t column,
                            const GemmOutput& out) {
    const Int8PanelLayout layout(k);
    const auto* w_scales = reinterpret_cast<const float*>(panel + layout.scales) + column;
    const auto* x_scales = reinterpret_cast<const float*>(x + k);  // row r's block b: x_scales[r * x_stride / 4 + b]
    const auto* quads = reinterpret_cast<const int32_t*>(x);         // four activations = one int32
    const int64_t quad_stride = x_stride / 4;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 sums[ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) sums[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < layout.blocks; ++b) {
      const uint8_t* wb = panel + b * kInt8Block * kPanel + column * 4;
      __m256i acc[ROWS];
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) acc[r] = _mm256_setzero_si256();
      for (int64_t q = 0; q < kInt8Block / 4; ++q) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + q * 4 * kPanel));
        const __m256i w_abs = _mm256_abs_epi8(w);
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; ++r) {
          const __m256i xq = _mm256_set1_epi32(quads[r * quad_stride + b * kInt8Block / 4 + q]);
          const __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(xq, w));
          acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(pairs, ones));
        }
      }
      const __m256 sw = _mm256_loadu_ps(w_scales + b * kPanel);
#pragma GCC unroll 8
      for (int r = 0; r < ROWS; ++r) {
        const __m256 scale = _mm256_mul_ps(sw, _mm256_set1_ps(x_scales[r * quad_stride + b]));
        sums[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r]), scale, sums[r]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) finish_tile_row(out, r, sums[r]);
  }
};

constexpr int kInt8TileRows = 6;

using Int8TileFn = void (*)(const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t, const GemmOutput&);

VL_TARGET static void int8_block_avx2(const Int8GemmArgs& a, const GemmShare& share) {
  static constexpr auto tiles = tile_table<Int8TileFn, Int8Tile>(std::make_integer_sequence<int, kInt8TileRows>());
  const auto x_stride = static_cast<int64_t>(int8_row_bytes(a.k));
  const int64_t panel_bytes = Int8PanelLayout(a.k).bytes();
  for (int64_t p = share.p0; p < share.p1; ++p) {
    for (int64_t m = share.m0; m < share.m1; m += kInt8TileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kInt8TileRows, share.m1 - m));
      for (int64_t c = 0; c < kPanel; c += kColumns) {
        tiles[rows](a.x + m * x_stride, x_stride, a.w + p * panel_bytes, a.k, c, output_tile(a.out, m, p * kPanel + c));
      }
    }
  }
}

void int8_gemm_avx2(const Int8GemmArgs& args, int ith, int nth) {
  int8_block_avx2(args, gemm_share(args.m, args.n / kPanel, kInt8TileRows, ith, nth));
}

#else

void half_gemm_avx2(const HalfGemmArgs&, int, int) {}
void int8_gemm_avx2(const Int8GemmArgs&, int, int) {}

#endif

}  // namespace vl::kernels
