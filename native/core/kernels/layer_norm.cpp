#include "core/kernels/layer_norm.h"

#include <cmath>
#include <vector>

#include "core/kernels/bf16_gemm.h"
#include "core/kernels/int8_gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_LN_KERNEL 1
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace vl::kernels {

#ifdef VL_HAVE_LN_KERNEL

// One row normalised into `out` (f32); mean and variance in two passes over the row.
__attribute__((target("avx512f"))) static void normalize_row_avx512(const LayerNormRows& a, const float* x, float* out) {
  const int64_t k = a.k;
  const auto mask_at = [k](int64_t i) { return k - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - i)) - 1); };
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask_at(i), x + i));
  const float mean = _mm512_reduce_add_ps(sum) / static_cast<float>(k);
  const __m512 vmean = _mm512_set1_ps(mean);
  __m512 squares = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = mask_at(i);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vmean);
    squares = _mm512_fmadd_ps(d, d, squares);
  }
  const __m512 rstd = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(squares) / static_cast<float>(k) + a.eps));
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = mask_at(i);
    const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean), rstd);
    const __m512 y = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, a.weight + i), _mm512_maskz_loadu_ps(m, a.bias + i));
    _mm512_mask_storeu_ps(out + i, m, y);
  }
}

// The sum of 8 lanes.
__attribute__((target("avx2"), always_inline)) static inline float sum_of(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// normalize_row_avx512 with 8 lanes, for k a multiple of 8.
__attribute__((target("avx2,fma"))) static void normalize_row_avx2(const LayerNormRows& a, const float* x, float* out) {
  const int64_t k = a.k;
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; i += 8) sum = _mm256_add_ps(sum, _mm256_loadu_ps(x + i));
  const __m256 vmean = _mm256_set1_ps(sum_of(sum) / static_cast<float>(k));
  __m256 squares = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmean);
    squares = _mm256_fmadd_ps(d, d, squares);
  }
  const __m256 rstd = _mm256_set1_ps(1.0f / std::sqrt(sum_of(squares) / static_cast<float>(k) + a.eps));
  for (int64_t i = 0; i < k; i += 8) {
    const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmean), rstd);
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(a.weight + i), _mm256_loadu_ps(a.bias + i)));
  }
}

void layer_norm_to_bf16(const LayerNormRows& a, int64_t begin, int64_t end, uint16_t* out) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(a.k));
  for (int64_t r = begin; r < end; ++r) {
    normalize_row_avx512(a, a.x + r * a.x_stride, row.data());
    bf16_from_f32(row.data(), out + r * a.k, a.k);
  }
}

void layer_norm_to_f32(const LayerNormRows& a, int64_t begin, int64_t end, float* out) {
  for (int64_t r = begin; r < end; ++r) normalize_row_avx2(a, a.x + r * a.x_stride, out + r * a.k);
}

void layer_norm_to_u8(const LayerNormRows& a, int64_t begin, int64_t end, uint8_t* out, Isa isa) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(a.k));
  const size_t row_bytes = int8_row_bytes(a.k);
  const auto normalize_row = isa == Isa::Avx512 ? normalize_row_avx512 : normalize_row_avx2;
  for (int64_t r = begin; r < end; ++r) {
    normalize_row(a, a.x + r * a.x_stride, row.data());
    quantize_rows(row.data(), a.k, a.k, 0, 1, out + r * row_bytes, isa);
  }
}

#else

void layer_norm_to_bf16(const LayerNormRows&, int64_t, int64_t, uint16_t*) {}
void layer_norm_to_f32(const LayerNormRows&, int64_t, int64_t, float*) {}
void layer_norm_to_u8(const LayerNormRows&, int64_t, int64_t, uint8_t*, Isa) {}

#endif

}  // namespace vl::kernels
