#pragma once
// Video-LLaMA's two branches, each as a sequence of stage graphs whose outputs are host tensors
// (so an encode can be cancelled and report progress between stages).
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

// Vision stages. frames [S, S, 3, T] -> vit [D, N + 1, T] -> qformer [H, Q, T] -> video embeddings [E, Qv, 1].
ggml_tensor* build_vit_stage(ggml_context* ctx, const VisionBranch& vb, ggml_tensor* frames);
ggml_tensor* build_qformer_stage(ggml_context* ctx, const VisionBranch& vb, ggml_tensor* vit);
// Adds frame t's position embedding to the queries of frame t, flattens frame-major
// ("video_qformer_input" [H, Q·T, 1]), runs the video Q-Former ("video_qformer") and llama_proj.
ggml_tensor* build_video_stage(ggml_context* ctx, const VisionBranch& vb, ggml_tensor* qformer);

// Audio stages. fbank [frames, mel, 1, M] -> ImageBind embeddings [Do, M] -> audio embeddings [E, Qa, 1].
ggml_tensor* build_imagebind_stage(ggml_context* ctx, const AudioBranch& ab, ggml_tensor* fbank);
// Adds clip m's position embedding ("audio_qformer_input"), runs the audio Q-Former
// ("audio_qformer") and audio_llama_proj.
ggml_tensor* build_audio_qformer_stage(ggml_context* ctx, const AudioBranch& ab, ggml_tensor* imagebind);

}  // namespace vl::graph
