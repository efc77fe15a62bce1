#include "core/graph/eva_vit.h"

#include "core/error.h"
#include "core/gguf_names.h"
#include "core/projector_loader.h"

namespace vl::graph {

EvaVit load_eva_vit(ProjectorLoader& file) {
  EvaVit vit;
  vit.image_size = file.size(KEY_VISION_IMAGE_SIZE);
  vit.patch_size = file.size(KEY_VISION_PATCH_SIZE);
  vit.width = file.size(KEY_VISION_WIDTH);
  vit.heads = file.size(KEY_VISION_HEADS);
  vit.mlp_width = file.size(KEY_VISION_MLP_WIDTH);
  vit.eps = file.eps(KEY_VISION_EPS);
  vit.ln_vision_eps = file.eps(KEY_VISION_LN_VISION_EPS);
  const int depth = file.count(KEY_VISION_DEPTH);
  if (vit.image_size < vit.patch_size || vit.width % vit.heads != 0) {
    throw Error("INVALID_MODEL", "vision hyper-parameters are inconsistent: image_size " +
                                     std::to_string(vit.image_size) + ", patch_size " + std::to_string(vit.patch_size) +
                                     ", width " + std::to_string(vit.width) + ", heads " + std::to_string(vit.heads));
  }
  const int64_t d = vit.width, p = vit.patch_size;
  vit.patch_kernel = file.tensor(gguf_name(TN_VIT_PATCH_EMBD, "weight"), {p, p, 3, d}, TensorKind::Float);
  vit.patch_bias = file.tensor(gguf_name(TN_VIT_PATCH_EMBD, "bias"), {d}, TensorKind::F32);
  vit.cls_token = file.tensor(TN_VIT_CLS_TOKEN, {d}, TensorKind::F32);
  vit.pos_embd = file.tensor(TN_VIT_POS_EMBD, {d, vit.tokens()}, TensorKind::F32);
  for (int i = 0; i < depth; ++i) {
    EvaVitBlock b;
    b.ln1 = load_layer_norm(file, gguf_layer(TN_VIT_LN1, i), d);
    b.ln2 = load_layer_norm(file, gguf_layer(TN_VIT_LN2, i), d);
    b.qkv = load_linear(file, gguf_layer(TN_VIT_ATTN_QKV, i), d, 3 * d, /*with_bias=*/false);
    b.q_bias = file.tensor(gguf_name(TN_VIT_ATTN_Q_BIAS, i), {d}, TensorKind::F32);
    b.v_bias = file.tensor(gguf_name(TN_VIT_ATTN_V_BIAS, i), {d}, TensorKind::F32);
    b.attn_out = load_linear(file, gguf_layer(TN_VIT_ATTN_OUT, i), d, d);
    b.ffn_up = load_linear(file, gguf_layer(TN_VIT_FFN_UP, i), d, vit.mlp_width);
    b.ffn_down = load_linear(file, gguf_layer(TN_VIT_FFN_DOWN, i), vit.mlp_width, d);
    vit.blocks.push_back(b);
  }
  vit.ln_vision = load_layer_norm(file, gguf_layer(TN_VIT_LN_VISION), d);
  return vit;
}

void for_each_weight(EvaVit& vit, const WeightVisitor& visit) {
  for (ggml_tensor** t : {&vit.patch_kernel, &vit.patch_bias, &vit.cls_token, &vit.pos_embd}) visit(*t);
  for (EvaVitBlock& b : vit.blocks) {
    for_each_weight(b.ln1, visit);
    for_each_weight(b.qkv, visit);
    visit(b.q_bias);
    visit(b.v_bias);
    for_each_weight(b.attn_out, visit);
    for_each_weight(b.ln2, visit);
    for_each_weight(b.ffn_up, visit);
    for_each_weight(b.ffn_down, visit);
  }
  for_each_weight(vit.ln_vision, visit);
}

// eva_vit.py:Attention.forward: qkv = linear(x, qkv.weight, cat(q_bias, 0, v_bias)), then
// attn.proj; returns `residual` + that. x: norm1's output (layer_norm_into b.qkv).
static ggml_tensor* eva_attention(ggml_context* ctx, ggml_tensor* x, const EvaVitBlock& b, int heads, int il,
                                  ggml_tensor* residual) {
  const int64_t d = b.qkv.weight->ne[0];
  if (b.qkv.on_own_kernel()) {
    // one product for q, k and v (our kernels read its strided slices as they are)
    ggml_tensor* qkv = linear(ctx, x, b.qkv);  // [3D, N, B]
    ggml_tensor* q = ggml_add(ctx, row_slice(ctx, qkv, 0, d), b.q_bias);
    ggml_tensor* v = ggml_add(ctx, row_slice(ctx, qkv, 2 * d, d), b.v_bias);
    ggml_tensor* context = name(attention(ctx, q, row_slice(ctx, qkv, d, d), v, heads, &b.qkv), "v.blk", il, "attn");
    return linear_residual(ctx, context, b.attn_out, residual);
  }
  Linear q_proj = output_slice(ctx, b.qkv, 0, d), v_proj = output_slice(ctx, b.qkv, 2 * d, d);
  q_proj.bias = b.q_bias;
  v_proj.bias = b.v_bias;
  ggml_tensor* q = linear(ctx, x, q_proj);
  ggml_tensor* k = linear(ctx, x, output_slice(ctx, b.qkv, d, d));
  ggml_tensor* v = linear(ctx, x, v_proj);
  ggml_tensor* context = name(attention(ctx, q, k, v, heads, &b.qkv), "v.blk", il, "attn");
  return linear_residual(ctx, context, b.attn_out, residual);
}

ggml_tensor* build_eva_vit(ggml_context* ctx, const EvaVit& vit, ggml_tensor* frames) {
  // PatchEmbed: Conv2d(3, D, k=s=P) with bias -> [D, N, T]
  ggml_tensor* x = ggml_add(ctx, conv_patches(ctx, frames, vit.patch_kernel, vit.patch_size), vit.patch_bias);
  x = prepend_token(ctx, x, vit.cls_token);
  x = name(ggml_add(ctx, x, vit.pos_embd), "v.pos_embd_out");  // [D, N + 1, T]

  for (size_t il = 0; il < vit.blocks.size(); ++il) {
    const EvaVitBlock& b = vit.blocks[il];
    const int i = static_cast<int>(il);
    x = eva_attention(ctx, layer_norm_into(ctx, x, b.ln1, vit.eps, b.qkv), b, vit.heads, i, x);
    x = linear_residual(ctx, linear_gelu(ctx, layer_norm_into(ctx, x, b.ln2, vit.eps, b.ffn_up), b.ffn_up), b.ffn_down, x);
    name(x, "v.blk", i, "out");
  }
  // No final norm (commented out in eva_vit.py); BLIP-2's ln_vision follows.
  return name(layer_norm(ctx, x, vit.ln_vision, vit.ln_vision_eps), "vit");
}

}  // namespace vl::graph
