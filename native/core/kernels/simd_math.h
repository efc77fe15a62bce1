#pragma once
// Vector math shared by our kernels' epilogues, 512-bit (AVX-512 F/DQ) and 256-bit (AVX2 + FMA)
// (x86-64 with GCC or Clang only; callers compile these into functions with those instructions
// enabled and dispatch at run time). Both widths compute the same polynomials.
#include <immintrin.h>

#define VL_AVX512_MATH __attribute__((target("avx512f,avx512dq"), always_inline))
#define VL_AVX2_MATH __attribute__((target("avx2,fma,f16c"), always_inline))

namespace vl::kernels {

// e^x for x in [-87, 88]: 2^n · p(r), r = x - n·ln2, degree-6 Taylor polynomial (error < 2 ulp).
VL_AVX512_MATH inline __m512 exp_ps(__m512 x) {
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
VL_AVX512_MATH inline __m512 gelu_erf_ps(__m512 x) {
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

// Row r of a 32-wide output tile: bias, epilogue, residual, store (GemmOutput's fields).
template <typename Output>
VL_AVX512_MATH inline void finish_tile_row(const Output& out, int r, __m512 v0, __m512 v1) {
  if (out.bias) {
    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(out.bias));
    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(out.bias + 16));
  }
  if (out.epilogue == decltype(out.epilogue)::GeluErf) {
    v0 = gelu_erf_ps(v0);
    v1 = gelu_erf_ps(v1);
  }
  if (out.residual) {
    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(out.residual + r * out.residual_stride));
    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(out.residual + r * out.residual_stride + 16));
  }
  _mm512_storeu_ps(out.y + r * out.y_stride, v0);
  _mm512_storeu_ps(out.y + r * out.y_stride + 16, v1);
}

// exp_ps for 8 lanes: the same reduction and polynomial, 2^n built in the exponent bits.
VL_AVX2_MATH inline __m256 exp_ps(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // n in [-126, 127] after the clamp: a normal exponent
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// gelu_erf_ps for 8 lanes.
VL_AVX2_MATH inline __m256 gelu_erf_ps(__m256 x) {
  const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678f));
  const __m256 az = _mm256_andnot_ps(sign_bit, z);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
  __m256 poly = _mm256_set1_ps(1.061405429f);
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-1.453152027f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
  poly = _mm256_mul_ps(poly, t);
  const __m256 erf_abs = _mm256_fnmadd_ps(poly, exp_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), az), az)),
                                          _mm256_set1_ps(1.0f));
  const __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(z, sign_bit));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

// Row r of an 8-wide output tile: bias, epilogue, residual, store.
template <typename Output>
VL_AVX2_MATH inline void finish_tile_row(const Output& out, int r, __m256 v) {
  if (out.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(out.bias));
  if (out.epilogue == decltype(out.epilogue)::GeluErf) v = gelu_erf_ps(v);
  if (out.residual) v = _mm256_add_ps(v, _mm256_loadu_ps(out.residual + r * out.residual_stride));
  _mm256_storeu_ps(out.y + r * out.y_stride, v);
}

}  // namespace vl::kernels
