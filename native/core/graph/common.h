#pragma once
// Builders shared by every encoder graph. Shapes are in ggml order: [width, tokens, batch]
// (ne[0] first), i.e. a PyTorch [batch, tokens, width] tensor.
#include <functional>
#include <string>

#include "ggml.h"

namespace vl {
class ProjectorLoader;
}

namespace vl::graph {

// While one lives on this thread, the builders below emit a training graph: only ops whose backward
// ggml implements (LayerNorm and GELU from core/train/diff_ops.h instead of ggml_norm / ggml_gelu_erf),
// and never our packed kernels (their ops have no backward). For ggml_build_backward_expand.
// `dropout`, when set, makes dropout() apply it (a training step's random masks).
class TrainingGraphScope {
 public:
  using Dropout = std::function<ggml_tensor*(ggml_context*, ggml_tensor*)>;
  explicit TrainingGraphScope(Dropout dropout = nullptr);
  ~TrainingGraphScope();
  TrainingGraphScope(const TrainingGraphScope&) = delete;
  TrainingGraphScope& operator=(const TrainingGraphScope&) = delete;
  static bool active();

 private:
  const TrainingGraphScope* outer_;
  Dropout dropout_;
  friend ggml_tensor* dropout(ggml_context* ctx, ggml_tensor* x);
};

// nn.Dropout where the reference has one (BERT's hidden and attention-probability dropout): x
// unchanged, except in a TrainingGraphScope with a dropout.
ggml_tensor* dropout(ggml_context* ctx, ggml_tensor* x);

// nn.LayerNorm's affine parameters.
struct LayerNorm {
  ggml_tensor* weight = nullptr;  // [D]
  ggml_tensor* bias = nullptr;    // [D]
};

// nn.Linear; bias may be absent. The weight may be packed for one of our CPU kernels
// (kernels/ggml_ops.h): then only the functions below may read it.
struct Linear {
  ggml_tensor* weight = nullptr;  // [in, out]
  ggml_tensor* bias = nullptr;    // [out] or null

  // Whether the weight is packed, i.e. the product runs on our kernels instead of ggml_mul_mat.
  bool on_own_kernel() const;
};

// Calls `visit` on each weight slot of a layer (weight, then bias when present): the encoders'
// for_each_weight are made of these, e.g. to replace the weights by trainable copies.
using WeightVisitor = std::function<void(ggml_tensor*&)>;
void for_each_weight(Linear& layer, const WeightVisitor& visit);
void for_each_weight(LayerNorm& norm, const WeightVisitor& visit);

// Declares `<prefix>.weight` / `<prefix>.bias` ([width] each).
LayerNorm load_layer_norm(ProjectorLoader& file, const std::string& layer, int64_t width);
// Declares `<prefix>.weight` ([in, out]) and, when `with_bias`, `<prefix>.bias` ([out]); the weight
// is registered for kernels::pack_linear_weights.
Linear load_linear(ProjectorLoader& file, const std::string& layer, int64_t in, int64_t out, bool with_bias = true);

// Rows [first, first + count) of ne[0] of x [D, N, B] as a view (a strided tensor).
ggml_tensor* row_slice(ggml_context* ctx, ggml_tensor* x, int64_t first, int64_t count);

// Output rows [first, first + count) of a layer whose outputs are packed (e.g. q, k, v in one matrix).
Linear output_slice(ggml_context* ctx, const Linear& packed, int64_t first, int64_t count);

// (x - mean) / sqrt(var + eps) * weight + bias over ne[0].
ggml_tensor* layer_norm(ggml_context* ctx, ggml_tensor* x, const LayerNorm& norm, float eps);

// x·Wᵀ + b: [in, N, B] -> [out, N, B].
ggml_tensor* linear(ggml_context* ctx, ggml_tensor* x, const Linear& layer);

// ggml_mul_mat(a, b) that a GPU backend computes in f32, as the CPU does: ggml's GPU backends
// accumulate f16 weights' products in f16 unless asked for f32, and ggml-vulkan converts operands
// that are not contiguous (the permuted heads of attention) to f16 before multiplying, so those
// are made contiguous first. On the CPU the result is the same f32 product.
ggml_tensor* mul_mat_f32(ggml_context* ctx, ggml_tensor* a, ggml_tensor* b);

// Multi-head softmax(q kᵀ / sqrt(head_dim)) v, no mask. q: [D, Nq, B], k and v: [D, Nk, B] ->
// [D, Nq, B]. Heads are consecutive slices of D (PyTorch's view(B, N, heads, head_dim)).
// `projection`, the layer that made q, k and v: when it runs on our AVX-512 BF16 or AVX2 kernels,
// one op of ours (kernels::attention) instead of ggml's f32 products.
ggml_tensor* attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads,
                       const Linear* projection = nullptr);

// gelu(x·Wᵀ + b) with exact (erf) GELU; one fused op when the weight is packed.
ggml_tensor* linear_gelu(ggml_context* ctx, ggml_tensor* x, const Linear& layer);

// residual + x·Wᵀ + b; one fused op when the weight is packed.
ggml_tensor* linear_residual(ggml_context* ctx, ggml_tensor* x, const Linear& layer, ggml_tensor* residual);

// layer_norm(x) meant only as the input of `consumer`'s linear()/linear_gelu()/linear_residual():
// when that layer runs on our kernels, one op that writes the kernel's input rows (bf16 or
// quantized) directly; otherwise plain layer_norm().
ggml_tensor* layer_norm_into(ggml_context* ctx, ggml_tensor* x, const LayerNorm& norm, float eps, const Linear& consumer);

// up -> exact (erf) GELU -> down, the MLP of EVA, BERT and ImageBind (nn.GELU() / "gelu").
ggml_tensor* gelu_mlp(ggml_context* ctx, ggml_tensor* x, const Linear& up, const Linear& down);

// Patch embedding as a convolution without padding: images [W, H, C, B] with kernel [K, K, C, D]
// and stride `stride` -> [D, OW * OH, B], patches in row-major order (PyTorch's flatten(2)).
ggml_tensor* conv_patches(ggml_context* ctx, ggml_tensor* images, ggml_tensor* kernel, int stride);

// Prepends the class token to every sequence: tokens [D, N, B], cls [D] -> [D, N + 1, B].
ggml_tensor* prepend_token(ggml_context* ctx, ggml_tensor* tokens, ggml_tensor* cls);
// Appends one token to every sequence: tokens [D, N, B], extra [D] -> [D, N + 1, B].
ggml_tensor* append_token(ggml_context* ctx, ggml_tensor* tokens, ggml_tensor* extra);

// F.normalize(x, p=2, dim=-1, eps) over ne[0].
ggml_tensor* l2_norm(ggml_context* ctx, ggml_tensor* x, float eps);

// Names a node after the reference module it mirrors, e.g. name(t, "v.blk", 3, "attn_out").
ggml_tensor* name(ggml_tensor* t, const std::string& prefix, int layer, const char* what);
ggml_tensor* name(ggml_tensor* t, const char* full_name);

}  // namespace vl::graph
