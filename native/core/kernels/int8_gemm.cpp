#include "core/kernels/int8_gemm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ggml.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_INT8_KERNEL 1
// GCC 12 warns about its own _mm512_undefined_* helpers inside the intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "core/kernels/simd_math.h"
#endif

namespace vl::kernels {

void pack_q8_0_panels(void* weights, int64_t k, int64_t n, int levels) {
  const Int8PanelLayout layout(k);
  const size_t row_bytes = ggml_row_size(GGML_TYPE_Q8_0, k);
  const auto to_float = ggml_get_type_traits(GGML_TYPE_Q8_0)->to_float;
  std::vector<uint8_t> source(row_bytes * kPanel);
  std::vector<float> row(static_cast<size_t>(k));
  auto* bytes = static_cast<uint8_t*>(weights);
  // panel p is written over bytes that only panels <= p occupied (same size per panel)
  for (int64_t p = 0; p < n / kPanel; ++p) {
    uint8_t* panel = bytes + p * layout.bytes();
    std::memcpy(source.data(), panel, source.size());
    auto* scales = reinterpret_cast<float*>(panel + layout.scales);
    auto* sums = reinterpret_cast<int32_t*>(panel + layout.sums);
    for (int64_t r = 0; r < kPanel; ++r) {
      to_float(source.data() + r * row_bytes, row.data(), k);
      for (int64_t b = 0; b < layout.blocks; ++b) {
        const float* x = row.data() + b * kInt8Block;
        float absmax = 0;
        for (int64_t i = 0; i < kInt8Block; ++i) absmax = std::max(absmax, std::fabs(x[i]));
        const float scale = absmax / static_cast<float>(levels), inverse = absmax > 0 ? static_cast<float>(levels) / absmax : 0;
        int32_t sum = 0;
        for (int64_t i = 0; i < kInt8Block; ++i) {
          const auto q = static_cast<int8_t>(std::lround(x[i] * inverse));
          sum += q;
          panel[b * kInt8Block * kPanel + (i / 4) * 4 * kPanel + r * 4 + i % 4] = static_cast<uint8_t>(q);
        }
        scales[b * kPanel + r] = scale;
        sums[b * kPanel + r] = 128 * sum;
      }
    }
  }
}

#ifdef VL_HAVE_INT8_KERNEL

#define VL_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

VL_TARGET static void quantize_row_avx512(const float* x, int64_t k, uint8_t* out) {
  auto* scales = reinterpret_cast<float*>(out + k);
  for (int64_t b = 0; b < k / kInt8Block; ++b) {
    const float* block = x + b * kInt8Block;
    __m512 absmax = _mm512_setzero_ps();
    for (int64_t i = 0; i < kInt8Block; i += 16) absmax = _mm512_max_ps(absmax, _mm512_abs_ps(_mm512_loadu_ps(block + i)));
    const float m = _mm512_reduce_max_ps(absmax);
    scales[b] = m / 127;
    const __m512 inverse = _mm512_set1_ps(m > 0 ? 127 / m : 0);
    for (int64_t i = 0; i < kInt8Block; i += 16) {
      // round to nearest, then + 128: 1..255, which vpmovdb truncates to the right byte
      const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(block + i), inverse));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * kInt8Block + i),
                       _mm512_cvtepi32_epi8(_mm512_add_epi32(q, _mm512_set1_epi32(128))));
    }
  }
}

// 8 values rounded to the nearest integer of x · inverse.
__attribute__((target("avx2,fma"), always_inline)) static inline __m256i quantized_avx2(const float* x, __m256 inverse) {
  return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), inverse));
}

// quantize_row_avx512 with 8 lanes.
__attribute__((target("avx2,fma"))) static void quantize_row_avx2(const float* x, int64_t k, uint8_t* out) {
  auto* scales = reinterpret_cast<float*>(out + k);
  const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
  const __m256i byte_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < k / kInt8Block; ++b) {
    const float* block = x + b * kInt8Block;
    __m256 absmax = _mm256_setzero_ps();
    for (int64_t i = 0; i < kInt8Block; i += 8) absmax = _mm256_max_ps(absmax, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(block + i)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(absmax), _mm256_extractf128_ps(absmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float m = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    scales[b] = m / 127;
    const __m256 inverse = _mm256_set1_ps(m > 0 ? 127 / m : 0);
    for (int64_t i = 0; i < kInt8Block; i += 32) {
      // -127..127 through the saturating packs (which interleave 128-bit lanes), back in order, + 128
      const __m256i words01 = _mm256_packs_epi32(quantized_avx2(block + i, inverse), quantized_avx2(block + i + 8, inverse));
      const __m256i words23 = _mm256_packs_epi32(quantized_avx2(block + i + 16, inverse), quantized_avx2(block + i + 24, inverse));
      const __m256i bytes = _mm256_xor_si256(_mm256_permutevar8x32_epi32(_mm256_packs_epi16(words01, words23), byte_order),
                                             _mm256_set1_epi8(static_cast<char>(0x80)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * kInt8Block + i), bytes);
    }
  }
}

void quantize_rows(const float* x, int64_t x_stride, int64_t k, int64_t begin, int64_t end, uint8_t* out, Isa isa) {
  const size_t row_bytes = int8_row_bytes(k);
  const auto quantize_row = isa == Isa::Avx512 ? quantize_row_avx512 : quantize_row_avx2;
  for (int64_t r = begin; r < end; ++r) quantize_row(x + r * x_stride, k, out + r * row_bytes);
}

// vpdpbusd through asm: GCC 12 spills the accumulators of the intrinsic's version to the stack
// on every step (it does not for vdpbf16ps).
VL_TARGET inline __attribute__((always_inline)) static __m512i dpbusd(__m512i acc, __m512i unsigned_bytes,
                                                                       __m512i signed_bytes) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(unsigned_bytes), "v"(signed_bytes));
  return acc;
}

// One block of one tile: sums[r] += sx[r] · sw · (Σ (qx + 128) · qw - 128 · Σ qw) over the block's
// inputs, the integer sums in registers.
template <int ROWS>
VL_TARGET static void int8_tile_block(const uint8_t* xb, int64_t x_stride, const uint8_t* wb, const float* x_scales,
                                      const float* w_scales, const int32_t* w_sums, float (*sums)[kPanel]) {
  __m512i acc[ROWS][2];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
  const auto* quads = reinterpret_cast<const int32_t*>(xb);  // four activations = one int32
  const int64_t quad_stride = x_stride / 4;
  for (int64_t q = 0; q < kInt8Block / 4; ++q) {
    const __m512i w0 = _mm512_loadu_si512(wb + q * 4 * kPanel);
    const __m512i w1 = _mm512_loadu_si512(wb + q * 4 * kPanel + 64);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      const __m512i a = _mm512_set1_epi32(quads[r * quad_stride + q]);
      acc[r][0] = dpbusd(acc[r][0], a, w0);
      acc[r][1] = dpbusd(acc[r][1], a, w1);
    }
  }
  const __m512 s0 = _mm512_loadu_ps(w_scales), s1 = _mm512_loadu_ps(w_scales + 16);
  const __m512i c0 = _mm512_loadu_si512(w_sums), c1 = _mm512_loadu_si512(w_sums + 16);
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
    const __m512 sx = _mm512_set1_ps(x_scales[r * x_stride / 4]);
    const __m512 v0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][0], c0));
    const __m512 v1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][1], c1));
    _mm512_store_ps(sums[r], _mm512_fmadd_ps(v0, _mm512_mul_ps(s0, sx), _mm512_load_ps(sums[r])));
    _mm512_store_ps(sums[r] + 16, _mm512_fmadd_ps(v1, _mm512_mul_ps(s1, sx), _mm512_load_ps(sums[r] + 16)));
  }
}

// One tile: ROWS quantized rows times one panel -> ROWS x kPanel outputs.
template <int ROWS>
VL_TARGET static void int8_tile(const uint8_t* x, int64_t x_stride, const uint8_t* panel, int64_t k,
                                const GemmOutput& out) {
  const Int8PanelLayout layout(k);
  const auto* w_scales = reinterpret_cast<const float*>(panel + layout.scales);
  const auto* w_sums = reinterpret_cast<const int32_t*>(panel + layout.sums);
  const auto* x_scales = reinterpret_cast<const float*>(x + k);  // row r's: x_scales[r * x_stride / 4 + b]
  alignas(64) float sums[ROWS][kPanel] = {};
  for (int64_t b = 0; b < layout.blocks; ++b) {
    int8_tile_block<ROWS>(x + b * kInt8Block, x_stride, panel + b * kInt8Block * kPanel, x_scales + b,
                          w_scales + b * kPanel, w_sums + b * kPanel, sums);
  }
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) finish_tile_row(out, r, _mm512_load_ps(sums[r]), _mm512_load_ps(sums[r] + 16));
}

constexpr int kTileRows = 12;

using TileFn = void (*)(const uint8_t*, int64_t, const uint8_t*, int64_t, const GemmOutput&);

template <int... R>
static constexpr std::array<TileFn, sizeof...(R) + 1> tile_table(std::integer_sequence<int, R...>) {
  return {nullptr, &int8_tile<R + 1>...};
}

VL_TARGET static void int8_block(const Int8GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  static constexpr auto tiles = tile_table(std::make_integer_sequence<int, kTileRows>());
  const auto x_stride = static_cast<int64_t>(int8_row_bytes(a.k));
  const int64_t panel_bytes = Int8PanelLayout(a.k).bytes();
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t m = m0; m < m1; m += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, m1 - m));
      tiles[rows](a.x + m * x_stride, x_stride, a.w + p * panel_bytes, a.k, output_tile(a.out, m, p * kPanel));
    }
  }
}

void int8_gemm(const Int8GemmArgs& args, int ith, int nth) {
  const GemmShare share = gemm_share(args.m, args.n / kPanel, kTileRows, ith, nth);
  int8_block(args, share.m0, share.m1, share.p0, share.p1);
}

#else

void quantize_rows(const float*, int64_t, int64_t, int64_t, int64_t, uint8_t*, Isa) {}
void int8_gemm(const Int8GemmArgs&, int, int) {}

#endif

}  // namespace vl::kernels
