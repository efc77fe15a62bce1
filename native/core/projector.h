#pragma once
// The projector: Video-LLaMA's encoders from image/video frames and audio fbanks to LLM-width
// embeddings. Model (immutable weights on a backend), state (compute buffers, reused across
// calls; one encode at a time) and per-call params are separate, as in whisper.cpp.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/graph/video_llama.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"

namespace vl {

struct ProjectorOptions {
  int threads = 0;  // CPU threads; 0 = all hardware threads
  GpuChoice gpu;    // the GPU the weights and graphs go to (none: the CPU)
};

// Sizes and constants read from the file, for callers that prepare inputs.
struct ProjectorInfo {
  int llm_width = 0;
  uint32_t file_type = 0;
  bool has_vision = false, has_audio = false;
  // vision
  int image_size = 0, video_queries = 0, max_frames = 0;
  std::array<float, 3> image_mean{}, image_std{};
  // audio
  int audio_queries = 0, max_clips = 0, sample_rate = 0, mel_bins = 0, target_frames = 0;
  float clip_seconds = 0, fbank_mean = 0, fbank_std = 0;
  std::string backend;  // name of the backend the graphs run on
  int own_kernel_layers = 0;  // linear layers packed for our kernels (kernels::pack_linear_weights)
  size_t weight_bytes = 0;    // the weights buffer
};

// Weights (one backend buffer) and hyper-parameters; never changes after load.
class ProjectorModel {
 public:
  // Throws vl::Error (FILE_NOT_FOUND, INVALID_MODEL, MISSING_TENSOR, TENSOR_SHAPE, NATIVE).
  static std::shared_ptr<ProjectorModel> load(const std::string& path, const ProjectorOptions& options);

  const ProjectorInfo& info() const { return info_; }
  const std::optional<graph::VisionBranch>& vision() const { return vision_; }
  const std::optional<graph::AudioBranch>& audio() const { return audio_; }
  // The backends a scheduler may use, best first (the CPU last).
  std::vector<ggml_backend_t> backends() const;
  ggml_backend_t cpu_backend() const { return cpu_ ? cpu_.get() : primary_.get(); }
  // Whether every graph node runs on the CPU backend, which polls the abort flag between nodes.
  bool cpu_only() const { return !cpu_; }
  int max_graph_nodes() const { return max_graph_nodes_; }

 private:
  ProjectorInfo info_;
  ggml_backend_ptr primary_;  // where the weights live
  ggml_backend_ptr cpu_;      // the CPU backend when primary_ is not the CPU
  ggml_context_ptr weights_ctx_;
  ggml_backend_buffer_ptr weights_buffer_;
  std::optional<graph::VisionBranch> vision_;
  std::optional<graph::AudioBranch> audio_;
  int max_graph_nodes_ = 0;
};

// A named intermediate tensor, in PyTorch (C) order.
struct StageTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// A stage of a branch graph is done (graph::StageNode::progress).
struct StageProgress {
  const char* stage;  // "vit", "qformer", "video_qformer", "imagebind", "audio_qformer"
  int completed;      // stages finished so far (1-based count)
  int total;
};

// Per-call parameters.
struct EncodeParams {
  // Polled before the graph, at each stage's end (the scheduler's eval callback), on the CPU between
  // graph nodes, and on other backends at each layer's end.
  const std::atomic<bool>* abort = nullptr;
  std::function<void(const StageProgress&)> on_progress;  // when a stage's last node is done, on the encoding thread
  bool collect_stages = false;                            // fill EncodeResult::stages
};

struct EncodeResult {
  int tokens = 0, dim = 0;
  std::map<std::string, StageTensor> stages;  // vit, qformer, video_qformer_input, ... when collected
};

// Compute buffers and scratch for one encode at a time; buffers grow to the largest input seen
// and are then reused.
class ProjectorState {
 public:
  explicit ProjectorState(std::shared_ptr<const ProjectorModel> model);

  const ProjectorModel& model() const { return *model_; }

  // frames: [T, 3, S, S] normalised, C order; out: Qv × E floats. Throws INVALID_ARGUMENT, ABORTED, NATIVE.
  EncodeResult encode_video(const float* frames, const std::vector<int64_t>& shape, float* out,
                            const EncodeParams& params);
  // fbank: [M, 1, mel, frames]; out: Qa × E floats.
  EncodeResult encode_audio(const float* fbank, const std::vector<int64_t>& shape, float* out,
                            const EncodeParams& params);

  // Bytes of the compute buffers (they grow to the largest graph run so far).
  size_t compute_bytes() const;

  // Floats an encode writes to `out`.
  size_t video_output_size() const;
  size_t audio_output_size() const;

 private:
  struct Branch;
  void run_branch(const Branch& branch, const EncodeParams& params, EncodeResult& result);

  std::shared_ptr<const ProjectorModel> model_;
  ggml_backend_sched_ptr sched_;
  std::vector<uint8_t> graph_meta_;  // holds the tensor/graph structs of the branch graph being built
  std::mutex busy_;
};

}  // namespace vl
