#pragma once
// Every GGUF metadata key and tensor name the native loaders read, in one table (llama.cpp's
// clip-impl.h KEY_* / TN_* style). docs/projector-format.md describes them; the converter's own
// table (src/gguf/) writes them, and test/unit/gguf-names.test.ts checks the two agree through
// the addon's ggufNames() export.
//
// Ids and templates are those of the converter's table (src/gguf/keys.ts), with printf
// placeholders for its `{}`: %d a block index, %s a Q-Former's key group ("video_qformer") or
// tensor prefix ("vqf"), or a trailing "weight" / "bias" suffix.
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace vl {

#define VL_GGUF_KEYS(X)                                           \
  X(ARCHITECTURE, "general.architecture")                         \
  X(FILE_TYPE, "general.file_type")                               \
  X(LLM_WIDTH, "vl.llm_width")                                    \
  X(HAS_VISION, "vl.has_vision")                                  \
  X(HAS_AUDIO, "vl.has_audio")                                    \
  X(VISION_IMAGE_SIZE, "vl.vision.image_size")                    \
  X(VISION_PATCH_SIZE, "vl.vision.patch_size")                    \
  X(VISION_WIDTH, "vl.vision.width")                              \
  X(VISION_DEPTH, "vl.vision.depth")                              \
  X(VISION_HEADS, "vl.vision.heads")                              \
  X(VISION_MLP_WIDTH, "vl.vision.mlp_width")                      \
  X(VISION_EPS, "vl.vision.eps")                                  \
  X(VISION_LN_VISION_EPS, "vl.vision.ln_vision_eps")              \
  X(VISION_IMAGE_MEAN, "vl.vision.image_mean")                    \
  X(VISION_IMAGE_STD, "vl.vision.image_std")                      \
  X(VIDEO_MAX_FRAMES, "vl.video.max_frames")                      \
  X(AUDIO_SAMPLE_RATE, "vl.audio.sample_rate")                    \
  X(AUDIO_MEL_BINS, "vl.audio.mel_bins")                          \
  X(AUDIO_TARGET_FRAMES, "vl.audio.target_frames")                \
  X(AUDIO_CLIP_SECONDS, "vl.audio.clip_seconds")                  \
  X(AUDIO_FBANK_MEAN, "vl.audio.fbank_mean")                      \
  X(AUDIO_FBANK_STD, "vl.audio.fbank_std")                        \
  X(AUDIO_MAX_CLIPS, "vl.audio.max_clips")                        \
  X(IMAGEBIND_WIDTH, "vl.imagebind.width")                        \
  X(IMAGEBIND_DEPTH, "vl.imagebind.depth")                        \
  X(IMAGEBIND_HEADS, "vl.imagebind.heads")                        \
  X(IMAGEBIND_MLP_WIDTH, "vl.imagebind.mlp_width")                \
  X(IMAGEBIND_OUT_WIDTH, "vl.imagebind.out_width")                \
  X(IMAGEBIND_PATCH_SIZE, "vl.imagebind.patch_size")              \
  X(IMAGEBIND_PATCH_STRIDE, "vl.imagebind.patch_stride")          \
  X(IMAGEBIND_STEM_EPS, "vl.imagebind.stem_eps")                  \
  X(IMAGEBIND_EPS, "vl.imagebind.eps")                            \
  X(IMAGEBIND_LOGIT_SCALE, "vl.imagebind.logit_scale")            \
  X(QFORMER_WIDTH, "vl.%s.width")                                 \
  X(QFORMER_HEADS, "vl.%s.heads")                                 \
  X(QFORMER_LAYERS, "vl.%s.layers")                               \
  X(QFORMER_FFN_WIDTH, "vl.%s.ffn_width")                         \
  X(QFORMER_QUERIES, "vl.%s.queries")                             \
  X(QFORMER_CROSS_ATTENTION_FREQ, "vl.%s.cross_attention_freq")   \
  X(QFORMER_ENCODER_WIDTH, "vl.%s.encoder_width")                 \
  X(QFORMER_EPS, "vl.%s.eps")

#define VL_GGUF_TENSORS(X)                                  \
  /* EVA ViT-g (eva_vit.py VisionTransformer) and BLIP-2's ln_vision */ \
  X(VIT_PATCH_EMBD, "v.patch_embd.%s")                      \
  X(VIT_CLS_TOKEN, "v.cls_token")                           \
  X(VIT_POS_EMBD, "v.pos_embd")                             \
  X(VIT_LN1, "v.blk.%d.ln1.%s")                             \
  X(VIT_ATTN_QKV, "v.blk.%d.attn_qkv.%s")                   \
  X(VIT_ATTN_Q_BIAS, "v.blk.%d.attn_q.bias")                \
  X(VIT_ATTN_V_BIAS, "v.blk.%d.attn_v.bias")                \
  X(VIT_ATTN_OUT, "v.blk.%d.attn_out.%s")                   \
  X(VIT_LN2, "v.blk.%d.ln2.%s")                             \
  X(VIT_FFN_UP, "v.blk.%d.ffn_up.%s")                       \
  X(VIT_FFN_DOWN, "v.blk.%d.ffn_down.%s")                   \
  X(VIT_LN_VISION, "v.ln_vision.%s")                        \
  /* the three BLIP-2-style Q-Formers (Qformer.py BertModel); %s first: the tensor prefix */ \
  X(QFORMER_QUERY_TOKENS, "%s.query_tokens")                \
  X(QFORMER_EMB_LN, "%s.emb_ln.%s")                         \
  X(QFORMER_SELF_Q, "%s.blk.%d.self_q.%s")                  \
  X(QFORMER_SELF_K, "%s.blk.%d.self_k.%s")                  \
  X(QFORMER_SELF_V, "%s.blk.%d.self_v.%s")                  \
  X(QFORMER_SELF_OUT, "%s.blk.%d.self_out.%s")              \
  X(QFORMER_SELF_LN, "%s.blk.%d.self_ln.%s")                \
  X(QFORMER_CROSS_Q, "%s.blk.%d.cross_q.%s")                \
  X(QFORMER_CROSS_K, "%s.blk.%d.cross_k.%s")                \
  X(QFORMER_CROSS_V, "%s.blk.%d.cross_v.%s")                \
  X(QFORMER_CROSS_OUT, "%s.blk.%d.cross_out.%s")            \
  X(QFORMER_CROSS_LN, "%s.blk.%d.cross_ln.%s")              \
  X(QFORMER_FFN_UP, "%s.blk.%d.ffn_up.%s")                  \
  X(QFORMER_FFN_DOWN, "%s.blk.%d.ffn_down.%s")              \
  X(QFORMER_FFN_LN, "%s.blk.%d.ffn_ln.%s")                  \
  /* Video-LLaMA's video head */                            \
  X(VIDEO_FRAME_POS_EMBD, "vid.frame_pos_embd")             \
  X(VIDEO_PROJ, "vid.proj.%s")                              \
  /* ImageBind's audio encoder (imagebind_model.py: stem, trunk, head) */ \
  X(AUDIO_PATCH_EMBD, "a.patch_embd.%s")                    \
  X(AUDIO_PATCH_LN, "a.patch_ln.%s")                        \
  X(AUDIO_CLS_TOKEN, "a.cls_token")                         \
  X(AUDIO_POS_EMBD, "a.pos_embd")                           \
  X(AUDIO_LN1, "a.blk.%d.ln1.%s")                           \
  X(AUDIO_ATTN_QKV, "a.blk.%d.attn_qkv.%s")                 \
  X(AUDIO_ATTN_BIAS_K, "a.blk.%d.attn_bias_k")              \
  X(AUDIO_ATTN_BIAS_V, "a.blk.%d.attn_bias_v")              \
  X(AUDIO_ATTN_OUT, "a.blk.%d.attn_out.%s")                 \
  X(AUDIO_LN2, "a.blk.%d.ln2.%s")                           \
  X(AUDIO_FFN_UP, "a.blk.%d.ffn_up.%s")                     \
  X(AUDIO_FFN_DOWN, "a.blk.%d.ffn_down.%s")                 \
  X(AUDIO_HEAD_LN, "a.head_ln.%s")                          \
  X(AUDIO_HEAD_PROJ, "a.head_proj.%s")                      \
  /* Video-LLaMA's audio head */                            \
  X(AUDIO_CLIP_POS_EMBD, "aud.pos_embd")                    \
  X(AUDIO_PROJ, "aud.proj.%s")

#define VL_DEFINE_KEY(id, value) inline constexpr const char* KEY_##id = value;
#define VL_DEFINE_TN(id, value) inline constexpr const char* TN_##id = value;
VL_GGUF_KEYS(VL_DEFINE_KEY)
VL_GGUF_TENSORS(VL_DEFINE_TN)
#undef VL_DEFINE_KEY
#undef VL_DEFINE_TN

// general.architecture of a projector file.
inline constexpr const char* PROJECTOR_ARCHITECTURE = "video-llama-projector";

// The language model's token embedding matrix (libllama's name, not the projector's).
inline constexpr const char* LLM_TOKEN_EMBD = "token_embd.weight";

// A template filled in, e.g. gguf_name(TN_VIT_ATTN_QKV, 3, "weight") == "v.blk.3.attn_qkv.weight".
template <typename... Args>
std::string gguf_name(const char* format, Args... args) {
  const int n = std::snprintf(nullptr, 0, format, args...);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), format, args...);
  out.resize(static_cast<size_t>(n));
  return out;
}

// A layer's name with its trailing "weight" / "bias" slot left open, e.g.
// gguf_layer(TN_VIT_ATTN_QKV, 3) == "v.blk.3.attn_qkv.%s", for graph::load_linear / load_layer_norm.
template <typename... Args>
std::string gguf_layer(const char* format, Args... args) {
  return gguf_name(format, args..., "%s");
}

// (id, template) of every key and tensor name above, for the addon's ggufNames() export.
using GgufNameTable = std::vector<std::pair<const char*, const char*>>;
inline const GgufNameTable& gguf_key_table() {
#define VL_ENTRY(id, value) {#id, value},
  static const GgufNameTable table = {VL_GGUF_KEYS(VL_ENTRY)};
  return table;
}
inline const GgufNameTable& gguf_tensor_table() {
  static const GgufNameTable table = {VL_GGUF_TENSORS(VL_ENTRY)};
  return table;
#undef VL_ENTRY
}

}  // namespace vl
