#include "core/graph/imagebind_audio.h"

#include "core/error.h"
#include "core/gguf_names.h"
#include "core/projector_loader.h"

namespace vl::graph {

ImageBindAudio load_imagebind_audio(ProjectorLoader& file) {
  ImageBindAudio ib;
  ib.mel_bins = file.size(KEY_AUDIO_MEL_BINS);
  ib.target_frames = file.size(KEY_AUDIO_TARGET_FRAMES);
  ib.width = file.size(KEY_IMAGEBIND_WIDTH);
  ib.heads = file.size(KEY_IMAGEBIND_HEADS);
  ib.mlp_width = file.size(KEY_IMAGEBIND_MLP_WIDTH);
  ib.out_width = file.size(KEY_IMAGEBIND_OUT_WIDTH);
  ib.patch_size = file.size(KEY_IMAGEBIND_PATCH_SIZE);
  ib.patch_stride = file.size(KEY_IMAGEBIND_PATCH_STRIDE);
  ib.stem_eps = file.eps(KEY_IMAGEBIND_STEM_EPS);
  ib.eps = file.eps(KEY_IMAGEBIND_EPS);
  ib.logit_scale = file.f32(KEY_IMAGEBIND_LOGIT_SCALE);
  const int depth = file.count(KEY_IMAGEBIND_DEPTH);
  if (ib.width % ib.heads != 0 || ib.mel_bins < ib.patch_size || ib.target_frames < ib.patch_size) {
    throw Error("INVALID_MODEL", "audio hyper-parameters are inconsistent: width " + std::to_string(ib.width) +
                                     ", heads " + std::to_string(ib.heads) + ", patch_size " +
                                     std::to_string(ib.patch_size) + ", patch_stride " +
                                     std::to_string(ib.patch_stride) + ", mel_bins " + std::to_string(ib.mel_bins) +
                                     ", target_frames " + std::to_string(ib.target_frames));
  }
  const int64_t d = ib.width, k = ib.patch_size;
  ib.patch_kernel = file.tensor(gguf_name(TN_AUDIO_PATCH_EMBD, "weight"), {k, k, 1, d}, TensorKind::Float);
  ib.patch_ln = load_layer_norm(file, gguf_layer(TN_AUDIO_PATCH_LN), d);
  ib.cls_token = file.tensor(TN_AUDIO_CLS_TOKEN, {d}, TensorKind::F32);
  ib.pos_embd = file.tensor(TN_AUDIO_POS_EMBD, {d, 1 + ib.patches()}, TensorKind::F32);
  for (int i = 0; i < depth; ++i) {
    ImageBindBlock b;
    b.ln1 = load_layer_norm(file, gguf_layer(TN_AUDIO_LN1, i), d);
    b.ln2 = load_layer_norm(file, gguf_layer(TN_AUDIO_LN2, i), d);
    b.in_proj = load_linear(file, gguf_layer(TN_AUDIO_ATTN_QKV, i), d, 3 * d);
    b.bias_k = file.tensor(gguf_name(TN_AUDIO_ATTN_BIAS_K, i), {d}, TensorKind::F32);
    b.bias_v = file.tensor(gguf_name(TN_AUDIO_ATTN_BIAS_V, i), {d}, TensorKind::F32);
    b.attn_out = load_linear(file, gguf_layer(TN_AUDIO_ATTN_OUT, i), d, d);
    b.ffn_up = load_linear(file, gguf_layer(TN_AUDIO_FFN_UP, i), d, ib.mlp_width);
    b.ffn_down = load_linear(file, gguf_layer(TN_AUDIO_FFN_DOWN, i), ib.mlp_width, d);
    ib.blocks.push_back(b);
  }
  ib.head_ln = load_layer_norm(file, gguf_layer(TN_AUDIO_HEAD_LN), d);
  ib.head_proj = load_linear(file, gguf_layer(TN_AUDIO_HEAD_PROJ), d, ib.out_width, /*with_bias=*/false);
  return ib;
}

void for_each_weight(ImageBindAudio& ib, const WeightVisitor& visit) {
  visit(ib.patch_kernel);
  for_each_weight(ib.patch_ln, visit);
  visit(ib.cls_token);
  visit(ib.pos_embd);
  for (ImageBindBlock& b : ib.blocks) {
    for_each_weight(b.ln1, visit);
    for_each_weight(b.in_proj, visit);
    visit(b.bias_k);
    visit(b.bias_v);
    for_each_weight(b.attn_out, visit);
    for_each_weight(b.ln2, visit);
    for_each_weight(b.ffn_up, visit);
    for_each_weight(b.ffn_down, visit);
  }
  for_each_weight(ib.head_ln, visit);
  for_each_weight(ib.head_proj, visit);
}

// nn.MultiheadAttention(bias=True, add_bias_kv=True), attn_mask None: L queries, L + 1 keys;
// returns `residual` + its output. x: norm_1's output (layer_norm_into b.in_proj).
static ggml_tensor* mha_with_bias_kv(ggml_context* ctx, ggml_tensor* x, const ImageBindBlock& b, int heads, int il,
                                     ggml_tensor* residual) {
  const int64_t d = b.in_proj.weight->ne[0];
  ggml_tensor *q, *k, *v;
  if (b.in_proj.on_own_kernel()) {
    // one product for q, k and v (our kernels read its strided slices as they are)
    ggml_tensor* qkv = linear(ctx, x, b.in_proj);  // [3Da, L, B]
    q = row_slice(ctx, qkv, 0, d);
    k = row_slice(ctx, qkv, d, d);
    v = row_slice(ctx, qkv, 2 * d, d);
  } else {
    q = linear(ctx, x, output_slice(ctx, b.in_proj, 0, d));
    k = linear(ctx, x, output_slice(ctx, b.in_proj, d, d));
    v = linear(ctx, x, output_slice(ctx, b.in_proj, 2 * d, d));
  }
  // add_bias_kv: cat([k, bias_k.repeat(1, bsz, 1)]) after the in-projection, one more key and value
  k = append_token(ctx, k, b.bias_k);
  v = append_token(ctx, v, b.bias_v);
  ggml_tensor* context = name(attention(ctx, q, k, v, heads, &b.in_proj), "a.blk", il, "attn");
  return linear_residual(ctx, context, b.attn_out, residual);
}

ImageBindAudioOutput build_imagebind_audio(ggml_context* ctx, const ImageBindAudio& ib, ggml_tensor* fbank) {
  // PatchEmbedGeneric: Conv2d(1, Da, k, stride, bias=False) -> flatten(2).transpose -> LayerNorm
  ggml_tensor* x = conv_patches(ctx, fbank, ib.patch_kernel, ib.patch_stride);  // [Da, patches, M]
  x = layer_norm(ctx, x, ib.patch_ln, ib.stem_eps);
  x = prepend_token(ctx, x, ib.cls_token);
  x = name(ggml_add(ctx, x, ib.pos_embd), "a.pos_embd_out");  // [Da, 1 + patches, M]

  for (size_t il = 0; il < ib.blocks.size(); ++il) {
    const ImageBindBlock& b = ib.blocks[il];
    const int i = static_cast<int>(il);
    x = mha_with_bias_kv(ctx, layer_norm_into(ctx, x, b.ln1, ib.eps, b.in_proj), b, ib.heads, i, x);
    x = linear_residual(ctx, linear_gelu(ctx, layer_norm_into(ctx, x, b.ln2, ib.eps, b.ffn_up), b.ffn_up), b.ffn_down, x);
    name(x, "a.blk", i, "out");
  }

  // Head: LayerNorm -> SelectElement(index=0) -> Linear(bias=False)
  x = layer_norm(ctx, x, ib.head_ln, ib.eps);
  const int64_t clips = x->ne[2];
  ggml_tensor* feature = ggml_cont(ctx, ggml_view_2d(ctx, x, ib.width, clips, x->nb[2], 0));  // [Da, M]
  name(feature, "audio_imagebind_feature");
  // Postprocessor: Normalize(dim=-1) (F.normalize, eps 1e-12) -> LearnableLogitScaling (fixed ×scale)
  ggml_tensor* embedding = l2_norm(ctx, linear(ctx, feature, ib.head_proj), 1e-12f);
  embedding = name(ggml_scale(ctx, embedding, ib.logit_scale), "audio_imagebind");
  return {feature, embedding};
}

}  // namespace vl::graph
