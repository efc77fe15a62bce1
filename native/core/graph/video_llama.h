#pragma once
// Video-LLaMA's two branches, each as one graph (as llama.cpp's mtmd builds one per encoder); the
// reference's intermediate tensors are named nodes of it (see VisionNodes / AudioNodes).
// Reference: video_llama/models/video_llama.py (VideoLLAMA.encode_videoQformer_visual, encode_audioQformer).
#include <array>

#include "core/graph/eva_vit.h"
#include "core/graph/imagebind_audio.h"
#include "core/graph/qformer.h"

namespace vl::graph {

struct VisionBranch {
  EvaVit vit;
  QFormer qformer;                        // BLIP-2's (cross-attention to the ViT tokens)
  QFormer video_qformer;                  // cross-attention to all frames' query outputs
  int max_frames = 0;
  ggml_tensor* frame_pos_embd = nullptr;  // video_frame_position_embedding [H, max_frames]
  Linear proj;                            // llama_proj [H, E]
  std::array<float, 3> image_mean{}, image_std{};
};

struct AudioBranch {
  ImageBindAudio imagebind;
  QFormer audio_qformer;
  int max_clips = 0;
  ggml_tensor* pos_embd = nullptr;  // audio_position_embedding [Do, max_clips]
  Linear proj;                      // audio_llama_proj [H, E]
  int sample_rate = 0;
  float clip_seconds = 0, fbank_mean = 0, fbank_std = 0;
};

VisionBranch load_vision_branch(ProjectorLoader& file, int llm_width);
AudioBranch load_audio_branch(ProjectorLoader& file, int llm_width);

// Only the parts the paper trains (video Q-Former, frame position embedding, llama_proj; audio
// Q-Former, audio position embedding, audio_llama_proj): the frozen encoders stay empty.
VisionBranch load_video_head(ProjectorLoader& file, int llm_width);
AudioBranch load_audio_head(ProjectorLoader& file, int llm_width);

// A named node of a branch graph that callers may read back or wait for.
struct StageNode {
  const char* name;      // the node's name, after the reference tensor it mirrors
  int rank;              // dimensions it has in the reference (ne[0..rank), reversed to C order); 0: not read back
  const char* progress;  // the progress stage that ends with this node, or null
};

// frames [S, S, 3, T] -> vit [D, N + 1, T] -> qformer [H, Q, T] -> + frame t's position row on every
// query of frame t, frame-major -> video_qformer_input [H, Q·T, 1] -> video_qformer [H, Qv, 1] ->
// llama_proj -> video_embeds [E, Qv, 1] (returned). The ViT and the BLIP-2 Q-Former run all frames
// as one batch, as encode_videoQformer_visual does.
ggml_tensor* build_vision_graph(ggml_context* ctx, const VisionBranch& vb, ggml_tensor* frames);
inline constexpr StageNode kVisionNodes[] = {
    {"vit", 3, "vit"},
    {"qformer", 3, "qformer"},
    {"video_qformer_input", 2, nullptr},
    {"video_qformer", 2, nullptr},
    {"video_embeds", 0, "video_qformer"},
};

// fbank [frames, mel, 1, M] -> ImageBind audio_imagebind_feature [Da, M] and audio_imagebind [Do, M]
// -> + clip m's position row -> audio_qformer_input [Do, M] -> audio_qformer [H, Qa, 1] ->
// audio_llama_proj -> audio_embeds [E, Qa, 1] (returned).
ggml_tensor* build_audio_graph(ggml_context* ctx, const AudioBranch& ab, ggml_tensor* fbank);
inline constexpr StageNode kAudioNodes[] = {
    {"audio_imagebind_feature", 2, nullptr},
    {"audio_imagebind", 2, "imagebind"},
    {"audio_qformer_input", 2, nullptr},
    {"audio_qformer", 2, nullptr},
    {"audio_embeds", 0, "audio_qformer"},
};

// The trainable tail of each branch graph, from the frozen stage's output: qformer [H, Q, T] ->
// video_embeds [E, Qv, 1], and audio_imagebind [Do, M] -> audio_embeds [E, Qa, 1].
ggml_tensor* build_video_head(ggml_context* ctx, const VisionBranch& vb, ggml_tensor* qformer);
ggml_tensor* build_audio_head(ggml_context* ctx, const AudioBranch& ab, ggml_tensor* embedding);

// Transformer layers of a branch graph (to size it).
int layers_of(const VisionBranch& vb);
int layers_of(const AudioBranch& ab);

}  // namespace vl::graph
