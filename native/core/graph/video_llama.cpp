#include "core/graph/video_llama.h"

#include "core/error.h"
#include "core/gguf_names.h"
#include "core/projector_loader.h"

namespace vl::graph {

// Two parts must agree on a width that each reads from its own key.
static void expect_same_width(const std::string& key, int value, const std::string& other_key, int other) {
  if (value != other) {
    throw Error("INVALID_MODEL", key + " is " + std::to_string(value) + " but " + other_key + " is " +
                                     std::to_string(other) + "; they must be equal");
  }
}

static std::array<float, 3> rgb(ProjectorLoader& file, const std::string& key) {
  const std::vector<float> v = file.f32_array(key, 3);
  return {v[0], v[1], v[2]};
}

VisionBranch load_video_head(ProjectorLoader& file, int llm_width) {
  VisionBranch vb;
  vb.video_qformer = load_qformer(file, "video_qformer", "vqf");
  vb.max_frames = file.size(KEY_VIDEO_MAX_FRAMES);
  vb.frame_pos_embd = file.tensor(TN_VIDEO_FRAME_POS_EMBD, {vb.video_qformer.encoder_width, vb.max_frames}, TensorKind::F32);
  vb.proj = load_linear(file, gguf_layer(TN_VIDEO_PROJ), vb.video_qformer.width, llm_width);
  return vb;
}

VisionBranch load_vision_branch(ProjectorLoader& file, int llm_width) {
  VisionBranch vb = load_video_head(file, llm_width);
  vb.vit = load_eva_vit(file);
  vb.qformer = load_qformer(file, "qformer", "qf");
  expect_same_width(gguf_name(KEY_QFORMER_ENCODER_WIDTH, "qformer"), vb.qformer.encoder_width, KEY_VISION_WIDTH, vb.vit.width);
  expect_same_width(gguf_name(KEY_QFORMER_ENCODER_WIDTH, "video_qformer"), vb.video_qformer.encoder_width,
                    gguf_name(KEY_QFORMER_WIDTH, "qformer"), vb.qformer.width);
  vb.image_mean = rgb(file, KEY_VISION_IMAGE_MEAN);
  vb.image_std = rgb(file, KEY_VISION_IMAGE_STD);
  return vb;
}

AudioBranch load_audio_head(ProjectorLoader& file, int llm_width) {
  AudioBranch ab;
  ab.audio_qformer = load_qformer(file, "audio_qformer", "aqf");
  ab.max_clips = file.size(KEY_AUDIO_MAX_CLIPS);
  ab.pos_embd = file.tensor(TN_AUDIO_CLIP_POS_EMBD, {ab.audio_qformer.encoder_width, ab.max_clips}, TensorKind::F32);
  ab.proj = load_linear(file, gguf_layer(TN_AUDIO_PROJ), ab.audio_qformer.width, llm_width);
  return ab;
}

AudioBranch load_audio_branch(ProjectorLoader& file, int llm_width) {
  AudioBranch ab = load_audio_head(file, llm_width);
  ab.imagebind = load_imagebind_audio(file);
  expect_same_width(gguf_name(KEY_QFORMER_ENCODER_WIDTH, "audio_qformer"), ab.audio_qformer.encoder_width,
                    KEY_IMAGEBIND_OUT_WIDTH, ab.imagebind.out_width);
  ab.sample_rate = file.size(KEY_AUDIO_SAMPLE_RATE);
  ab.clip_seconds = file.f32(KEY_AUDIO_CLIP_SECONDS);
  ab.fbank_mean = file.f32(KEY_AUDIO_FBANK_MEAN);
  ab.fbank_std = file.f32(KEY_AUDIO_FBANK_STD);
  return ab;
}

// Rows [0, count) of an embedding table [width, rows] as [width, 1, count]: one row per batch item.
static ggml_tensor* first_rows_per_item(ggml_context* ctx, ggml_tensor* table, int64_t count) {
  return ggml_view_3d(ctx, table, table->ne[0], 1, count, table->nb[1], table->nb[1], 0);
}

int layers_of(const VisionBranch& vb) {
  return static_cast<int>(vb.vit.blocks.size() + vb.qformer.layers.size() + vb.video_qformer.layers.size());
}

int layers_of(const AudioBranch& ab) {
  return static_cast<int>(ab.imagebind.blocks.size() + ab.audio_qformer.layers.size());
}

// video_llama.py:encode_videoQformer_visual
ggml_tensor* build_vision_graph(ggml_context* ctx, const VisionBranch& vb, ggml_tensor* frames) {
  ggml_tensor* vit = build_eva_vit(ctx, vb.vit, frames);  // named "vit"
  return build_video_head(ctx, vb, name(build_qformer(ctx, vb.qformer, vit), "qformer"));
}

ggml_tensor* build_video_head(ggml_context* ctx, const VisionBranch& vb, ggml_tensor* x) {
  const int64_t width = x->ne[0], queries = x->ne[1], count = x->ne[2];
  x = ggml_add(ctx, x, first_rows_per_item(ctx, vb.frame_pos_embd, count));
  // 'b t q h -> b (t q) h': frame-major, one sequence
  x = name(ggml_reshape_3d(ctx, x, width, queries * count, 1), "video_qformer_input");
  x = name(build_qformer(ctx, vb.video_qformer, x), "video_qformer");
  return name(linear(ctx, x, vb.proj), "video_embeds");
}

// video_llama.py:encode_audioQformer
ggml_tensor* build_audio_graph(ggml_context* ctx, const AudioBranch& ab, ggml_tensor* fbank) {
  return build_audio_head(ctx, ab, build_imagebind_audio(ctx, ab.imagebind, fbank).embedding);
}

ggml_tensor* build_audio_head(ggml_context* ctx, const AudioBranch& ab, ggml_tensor* embedding) {
  const int64_t width = embedding->ne[0], clips = embedding->ne[1];
  ggml_tensor* positions = ggml_view_2d(ctx, ab.pos_embd, width, clips, ab.pos_embd->nb[1], 0);
  ggml_tensor* x = name(ggml_add(ctx, embedding, positions), "audio_qformer_input");  // [Do, M]
  x = name(build_qformer(ctx, ab.audio_qformer, ggml_reshape_3d(ctx, x, width, clips, 1)), "audio_qformer");
  return name(linear(ctx, x, ab.proj), "audio_embeds");
}

}  // namespace vl::graph
