#include "core/train/diff_ops.h"

#include <cmath>

namespace vl::train {

ggml_tensor* layer_norm(ggml_context* ctx, ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias, float eps) {
  // SUM_ROWS, not MEAN: MEAN's backward in this release asserts on a non-scalar mean (it uses ADD1).
  ggml_tensor* mean = ggml_scale(ctx, ggml_sum_rows(ctx, x), 1.0f / static_cast<float>(x->ne[0]));
  ggml_tensor* centred = ggml_sub(ctx, x, ggml_repeat(ctx, mean, x));
  ggml_tensor* y = ggml_rms_norm(ctx, centred, eps);
  if (weight) y = ggml_mul(ctx, y, weight);
  if (bias) y = ggml_add(ctx, y, bias);
  return y;
}

ggml_tensor* gelu_erf(ggml_context* ctx, ggml_tensor* x) {
  constexpr float p = 0.3275911f;
  constexpr float a[5] = {0.254829592f, -0.284496736f, 1.421413741f, -1.453152027f, 1.061405429f};
  ggml_tensor* z = ggml_scale(ctx, x, static_cast<float>(M_SQRT1_2));
  ggml_tensor* az = ggml_abs(ctx, z);
  ggml_tensor* denominator = ggml_scale_bias(ctx, az, p, 1.0f);
  ggml_tensor* t = ggml_div(ctx, ggml_scale_bias(ctx, az, 0.0f, 1.0f), denominator);  // 1 / (1 + p|z|)
  ggml_tensor* poly = ggml_scale_bias(ctx, t, a[4], a[3]);                            // Horner
  for (int i = 2; i >= 0; --i) poly = ggml_scale_bias(ctx, ggml_mul(ctx, poly, t), 1.0f, a[i]);
  poly = ggml_mul(ctx, poly, t);
  ggml_tensor* gauss = ggml_exp(ctx, ggml_scale(ctx, ggml_sqr(ctx, az), -1.0f));
  ggml_tensor* erf_abs = ggml_scale_bias(ctx, ggml_mul(ctx, poly, gauss), -1.0f, 1.0f);
  ggml_tensor* erf = ggml_mul(ctx, ggml_sgn(ctx, z), erf_abs);
  return ggml_mul(ctx, x, ggml_scale_bias(ctx, erf, 0.5f, 0.5f));
}

ggml_tensor* l2_norm(ggml_context* ctx, ggml_tensor* x, float eps) {
  // rms_norm(x, e) = x / sqrt(Σx²/D + e): with e = eps²/D, times 1/√D.
  const float width = static_cast<float>(x->ne[0]);
  return ggml_scale(ctx, ggml_rms_norm(ctx, x, eps * eps / width), 1.0f / std::sqrt(width));
}

}  // namespace vl::train
