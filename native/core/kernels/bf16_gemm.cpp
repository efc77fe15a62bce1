#include "core/kernels/bf16_gemm.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_BF16_KERNEL 1
// GCC 12 warns about its own _mm512_undefined_* helpers inside the intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace vl::kernels {

void pack_bf16_panels(uint16_t* weights, int64_t k, int64_t n) {
  const int64_t panel_elems = k * kPanel;
  std::vector<uint16_t> rows(static_cast<size_t>(panel_elems));
  for (int64_t p = 0; p < n / kPanel; ++p) {
    uint16_t* panel = weights + p * panel_elems;
    std::memcpy(rows.data(), panel, static_cast<size_t>(panel_elems) * sizeof(uint16_t));
    for (int64_t pair = 0; pair < k / 2; ++pair) {
      uint16_t* out = panel + pair * 2 * kPanel;
      for (int64_t r = 0; r < kPanel; ++r) {
        out[2 * r] = rows[static_cast<size_t>(r * k + 2 * pair)];
        out[2 * r + 1] = rows[static_cast<size_t>(r * k + 2 * pair + 1)];
      }
    }
  }
}

#ifdef VL_HAVE_BF16_KERNEL

bool bf16_gemm_available() {
  static const bool available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return available;
}

#define VL_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define VL_INLINE inline __attribute__((always_inline))

// e^x for x in [-87, 88]: 2^n · p(r), r = x - n·ln2, degree-6 Taylor polynomial (error < 2 ulp).
VL_TARGET VL_INLINE static __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// 0.5·x·(1 + erf(x/√2)), erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).
VL_TARGET VL_INLINE static __m512 gelu_erf_ps(__m512 x) {
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678f));
  const __m512 az = _mm512_abs_ps(z);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 poly = _mm512_set1_ps(1.061405429f);
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453152027f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
  poly = _mm512_mul_ps(poly, t);
  const __m512 erf_abs = _mm512_fnmadd_ps(poly, exp_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), az), az)),
                                          _mm512_set1_ps(1.0f));
  // erf is odd: copy z's sign onto |erf|
  const __m512 sign = _mm512_and_ps(z, _mm512_castsi512_ps(_mm512_set1_epi32(INT32_MIN)));
  const __m512 erf = _mm512_or_ps(erf_abs, sign);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

// One tile: rows [0, ROWS) of x times one packed panel -> ROWS x kPanel outputs.
template <int ROWS>
VL_TARGET static void gemm_tile(const uint16_t* x, int64_t x_stride, const uint16_t* panel, int64_t k_pairs,
                                const float* bias, float* y, int64_t y_stride, Epilogue epilogue) {
  __m512 acc[ROWS][2];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const int32_t* pairs = reinterpret_cast<const int32_t*>(x);  // one bf16 pair = one int32
  const int64_t pair_stride = x_stride / 2;
  for (int64_t j = 0; j < k_pairs; ++j) {
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(panel + j * 2 * kPanel);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(panel + j * 2 * kPanel + 32);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pairs[r * pair_stride + j]);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, w0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, w1);
    }
  }
  const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 b1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
    __m512 v0 = _mm512_add_ps(acc[r][0], b0), v1 = _mm512_add_ps(acc[r][1], b1);
    if (epilogue == Epilogue::GeluErf) {
      v0 = gelu_erf_ps(v0);
      v1 = gelu_erf_ps(v1);
    }
    _mm512_storeu_ps(y + r * y_stride, v0);
    _mm512_storeu_ps(y + r * y_stride + 16, v1);
  }
}

constexpr int kTileRows = 12;

using TileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, const float*, float*, int64_t, Epilogue);

template <int... R>
static constexpr std::array<TileFn, sizeof...(R) + 1> tile_table(std::integer_sequence<int, R...>) {
  return {nullptr, &gemm_tile<R + 1>...};
}

// Rows [m0, m1) of the output for panels [p0, p1).
VL_TARGET static void gemm_block(const Bf16GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  static constexpr auto tiles = tile_table(std::make_integer_sequence<int, kTileRows>());
  const int64_t k_pairs = a.k / 2;
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* panel = a.w + p * a.k * kPanel;
    const float* bias = a.bias ? a.bias + p * kPanel : nullptr;
    for (int64_t m = m0; m < m1; m += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, m1 - m));
      tiles[rows](a.x + m * a.x_stride, a.x_stride, panel, k_pairs, bias, a.y + m * a.y_stride + p * kPanel, a.y_stride,
                  a.epilogue);
    }
  }
}

void bf16_gemm(const Bf16GemmArgs& args, int ith, int nth) {
  const int64_t panels = args.n / kPanel;
  // Split by panels (each worker keeps its panels in its own L2) unless there are too few.
  if (panels >= 2 * nth || args.m < kTileRows * nth) {
    const int64_t per = (panels + nth - 1) / nth;
    const int64_t p0 = std::min(panels, ith * per), p1 = std::min(panels, p0 + per);
    gemm_block(args, 0, args.m, p0, p1);
  } else {
    const int64_t tiles = (args.m + kTileRows - 1) / kTileRows;
    const int64_t per = (tiles + nth - 1) / nth;
    const int64_t m0 = std::min(args.m, ith * per * kTileRows), m1 = std::min(args.m, m0 + per * kTileRows);
    gemm_block(args, m0, m1, 0, panels);
  }
}

#else

bool bf16_gemm_available() { return false; }
void bf16_gemm(const Bf16GemmArgs&, int, int) {}

#endif

}  // namespace vl::kernels
