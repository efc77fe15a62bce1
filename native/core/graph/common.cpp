#include "core/graph/common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/gguf_names.h"
#include "core/kernels/ggml_ops.h"
#include "core/projector_loader.h"
#include "core/train/diff_ops.h"

namespace vl::graph {

static thread_local const TrainingGraphScope* training_graph = nullptr;

TrainingGraphScope::TrainingGraphScope(Dropout dropout) : outer_(training_graph), dropout_(std::move(dropout)) {
  training_graph = this;
}
TrainingGraphScope::~TrainingGraphScope() { training_graph = outer_; }
bool TrainingGraphScope::active() { return training_graph != nullptr; }

ggml_tensor* dropout(ggml_context* ctx, ggml_tensor* x) {
  return training_graph && training_graph->dropout_ ? training_graph->dropout_(ctx, x) : x;
}

void for_each_weight(Linear& layer, const WeightVisitor& visit) {
  visit(layer.weight);
  if (layer.bias) visit(layer.bias);
}

void for_each_weight(LayerNorm& norm, const WeightVisitor& visit) {
  visit(norm.weight);
  visit(norm.bias);
}

// `layer`: a name from gguf_layer(), its weight / bias slot open.
LayerNorm load_layer_norm(ProjectorLoader& file, const std::string& layer, int64_t width) {
  return {file.tensor(gguf_name(layer.c_str(), "weight"), {width}, TensorKind::F32),
          file.tensor(gguf_name(layer.c_str(), "bias"), {width}, TensorKind::F32)};
}

bool Linear::on_own_kernel() const {
  const bool packed = kernels::packed_format(weight) != kernels::PackedFormat::None;
  if (packed && TrainingGraphScope::active()) throw Error("NATIVE", "A training graph cannot use a packed weight");
  return packed;
}

Linear load_linear(ProjectorLoader& file, const std::string& name, int64_t in, int64_t out, bool with_bias) {
  Linear layer;
  layer.weight = file.tensor(gguf_name(name.c_str(), "weight"), {in, out}, TensorKind::Matrix);
  kernels::mark_linear_weight(layer.weight);
  if (with_bias) layer.bias = file.tensor(gguf_name(name.c_str(), "bias"), {out}, TensorKind::F32);
  return layer;
}

ggml_tensor* row_slice(ggml_context* ctx, ggml_tensor* x, int64_t first, int64_t count) {
  return ggml_view_3d(ctx, x, count, x->ne[1], x->ne[2], x->nb[1], x->nb[2], first * x->nb[0]);
}

Linear output_slice(ggml_context* ctx, const Linear& packed, int64_t first, int64_t count) {
  ggml_tensor* w = packed.weight;
  if (packed.on_own_kernel() && (first % kernels::kPanel != 0 || count % kernels::kPanel != 0)) {
    throw Error("NATIVE", "a slice of a repacked weight must cover whole panels");
  }
  Linear slice;
  slice.weight = ggml_view_2d(ctx, w, w->ne[0], count, w->nb[1], first * w->nb[1]);
  if (packed.bias) slice.bias = ggml_view_1d(ctx, packed.bias, count, first * packed.bias->nb[0]);
  return slice;
}

ggml_tensor* layer_norm(ggml_context* ctx, ggml_tensor* x, const LayerNorm& norm, float eps) {
  if (TrainingGraphScope::active()) return train::layer_norm(ctx, x, norm.weight, norm.bias, eps);
  x = ggml_norm(ctx, x, eps);
  x = ggml_mul(ctx, x, norm.weight);
  return ggml_add(ctx, x, norm.bias);
}

ggml_tensor* mul_mat_f32(ggml_context* ctx, ggml_tensor* a, ggml_tensor* b) {
  if (!ggml_is_contiguous(a)) a = ggml_cont(ctx, a);
  if (!ggml_is_contiguous(b)) b = ggml_cont(ctx, b);
  ggml_tensor* product = ggml_mul_mat(ctx, a, b);
  ggml_prec_set_acc(product, GGML_PREC_F32);
  return product;
}

ggml_tensor* linear(ggml_context* ctx, ggml_tensor* x, const Linear& layer) {
  if (layer.on_own_kernel()) return kernels::packed_product(ctx, x, layer.weight, layer.bias, kernels::Epilogue::None, nullptr);
  x = mul_mat_f32(ctx, layer.weight, x);
  return layer.bias ? ggml_add(ctx, x, layer.bias) : x;
}

ggml_tensor* linear_gelu(ggml_context* ctx, ggml_tensor* x, const Linear& layer) {
  if (layer.on_own_kernel()) return kernels::packed_product(ctx, x, layer.weight, layer.bias, kernels::Epilogue::GeluErf, nullptr);
  ggml_tensor* h = linear(ctx, x, layer);
  return TrainingGraphScope::active() ? train::gelu_erf(ctx, h) : ggml_gelu_erf(ctx, h);
}

ggml_tensor* linear_residual(ggml_context* ctx, ggml_tensor* x, const Linear& layer, ggml_tensor* residual) {
  if (layer.on_own_kernel()) return kernels::packed_product(ctx, x, layer.weight, layer.bias, kernels::Epilogue::None, residual);
  return ggml_add(ctx, residual, linear(ctx, x, layer));
}

ggml_tensor* layer_norm_into(ggml_context* ctx, ggml_tensor* x, const LayerNorm& norm, float eps, const Linear& consumer) {
  ggml_tensor* rows = kernels::layer_norm_into(ctx, x, norm.weight, norm.bias, eps, consumer.weight);
  return rows ? rows : layer_norm(ctx, x, norm, eps);
}

ggml_tensor* attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads,
                       const Linear* projection) {
  if (projection) {
    if (ggml_tensor* own = kernels::attention(ctx, q, k, v, heads, projection->weight)) return own;
  }
  const int64_t width = q->ne[0], head_dim = width / heads, batch = q->ne[2];
  // e.g. slices of a packed q/k/v product whose kernel has no attention of ours
  if (!ggml_is_contiguous(q)) q = ggml_cont(ctx, q);
  if (!ggml_is_contiguous(k)) k = ggml_cont(ctx, k);
  if (!ggml_is_contiguous(v)) v = ggml_cont(ctx, v);
  const int64_t n_q = q->ne[1], n_kv = k->ne[1];
  // [D, N, B] -> [head_dim, heads, N, B] -> [head_dim, N, heads, B]
  q = ggml_permute(ctx, ggml_reshape_4d(ctx, q, head_dim, heads, n_q, batch), 0, 2, 1, 3);
  k = ggml_permute(ctx, ggml_reshape_4d(ctx, k, head_dim, heads, n_kv, batch), 0, 2, 1, 3);
  // v as [N_kv, head_dim, heads, B] so that it is the left operand of the second product
  v = ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_4d(ctx, v, head_dim, heads, n_kv, batch), 1, 2, 0, 3));

  ggml_tensor* scores = mul_mat_f32(ctx, k, q);  // [N_kv, N_q, heads, B]
  scores = ggml_soft_max_ext(ctx, scores, nullptr, 1.0f / std::sqrt(static_cast<float>(head_dim)), 0.0f);
  scores = dropout(ctx, scores);  // BertSelfAttention's attention_probs dropout
  ggml_tensor* context = mul_mat_f32(ctx, v, scores);  // [head_dim, N_q, heads, B]
  context = ggml_cont(ctx, ggml_permute(ctx, context, 0, 2, 1, 3));  // [head_dim, heads, N_q, B]
  return ggml_reshape_3d(ctx, context, width, n_q, batch);
}

ggml_tensor* gelu_mlp(ggml_context* ctx, ggml_tensor* x, const Linear& up, const Linear& down) {
  return linear(ctx, linear_gelu(ctx, x, up), down);
}

ggml_tensor* conv_patches(ggml_context* ctx, ggml_tensor* images, ggml_tensor* kernel, int stride) {
  // [K*K*C, OW, OH, B]; f32 so that the input keeps full precision whatever the kernel's type
  ggml_tensor* columns = ggml_im2col(ctx, kernel, images, stride, stride, 0, 0, 1, 1, true, GGML_TYPE_F32);
  const int64_t patch_len = columns->ne[0], n_patches = columns->ne[1] * columns->ne[2], batch = columns->ne[3];
  ggml_tensor* kernel_rows = ggml_reshape_2d(ctx, kernel, patch_len, kernel->ne[3]);  // [K*K*C, D]
  ggml_tensor* out = mul_mat_f32(ctx, kernel_rows, ggml_reshape_2d(ctx, columns, patch_len, n_patches * batch));
  return ggml_reshape_3d(ctx, out, kernel->ne[3], n_patches, batch);
}

// tokens [D, N, B] and `row` [D] in every sequence, before or after them -> [D, N + 1, B].
static ggml_tensor* with_token(ggml_context* ctx, ggml_tensor* tokens, ggml_tensor* row, bool before) {
  const int64_t width = tokens->ne[0], n = tokens->ne[1], batch = tokens->ne[2];
  ggml_tensor* row_3d = ggml_reshape_3d(ctx, row, width, 1, 1);
  if (TrainingGraphScope::active()) {
    // CONCAT has no backward: the row in every position, the tokens set over theirs (SET's backward
    // gives the row the gradient of its own position only).
    ggml_tensor* rows = ggml_repeat_4d(ctx, row_3d, width, n + 1, batch, 1);
    if (!ggml_is_contiguous(tokens)) tokens = ggml_cont(ctx, tokens);
    return ggml_set(ctx, rows, tokens, rows->nb[1], rows->nb[2], rows->nb[3], before ? rows->nb[1] : 0);
  }
  ggml_tensor* per_item = ggml_repeat_4d(ctx, row_3d, width, 1, batch, 1);
  return before ? ggml_concat(ctx, per_item, tokens, 1) : ggml_concat(ctx, tokens, per_item, 1);
}

ggml_tensor* prepend_token(ggml_context* ctx, ggml_tensor* tokens, ggml_tensor* cls) {
  return with_token(ctx, tokens, cls, /*before=*/true);
}

ggml_tensor* append_token(ggml_context* ctx, ggml_tensor* tokens, ggml_tensor* extra) {
  return with_token(ctx, tokens, extra, /*before=*/false);
}

ggml_tensor* l2_norm(ggml_context* ctx, ggml_tensor* x, float eps) {
  return TrainingGraphScope::active() ? train::l2_norm(ctx, x, eps) : ggml_l2_norm(ctx, x, eps);
}

ggml_tensor* name(ggml_tensor* t, const std::string& prefix, int layer, const char* what) {
  return ggml_format_name(t, "%s.%d.%s", prefix.c_str(), layer, what);
}

ggml_tensor* name(ggml_tensor* t, const char* full_name) {
  return ggml_set_name(t, full_name);
}

}  // namespace vl::graph
