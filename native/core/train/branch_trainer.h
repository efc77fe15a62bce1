#pragma once
// The trainer of one Video-LLaMA branch, what the paper's stages 1/2 train (video_llama.py:
// encode_videoQformer_visual / encode_audioQformer with the encoders and the LLM frozen): the
// branch's Q-Former (all weights and its query tokens), its position embedding and its LLaMA
// projection, as f32 tensors, on the SAME graph builders as inference (graph::build_video_head /
// build_audio_head under graph::TrainingGraphScope), into the frozen LLaMA's answer-only loss;
// gradients by ggml_build_backward_expand, updates by ggml_opt_step_adamw. With Unfreeze, also the
// branch's encoder and/or the BLIP-2 Q-Former, the whole branch graph running on preprocessed media.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/graph/video_llama.h"
#include "core/train/llama_graph.h"
#include "core/train/optimizer.h"

namespace vl::train {

enum class Branch { Video, Audio };

// What a trainer trains beyond the paper's head (issue 13's unfreeze options): the branch's encoder
// (EVA ViT with its patch embedding, cls token, position embedding, blocks and BLIP-2's ln_vision;
// or ImageBind audio with its stem, blocks and head) and/or the BLIP-2 Q-Former (video branch).
struct Unfreeze {
  bool encoder = false;
  bool qformer = false;
  // Whether the frozen stage runs in the step's graph, i.e. examples carry preprocessed media.
  bool any() const { return encoder || qformer; }
};

// One example (src/train/example.ts's TrainingExample): after the frozen stage, or when a trainer
// unfreezes more, the preprocessed media the whole branch reads.
struct BranchExample {
  // features — video: [units][frame queries][width]; audio: [units][width];
  // media — video: frames [units][3][S][S] (normalised); audio: fbank [units][mel][frames].
  std::vector<float> features;
  int64_t units = 0;            // frames or clips
  std::vector<int32_t> tokens;  // values at the media positions are ignored
  int64_t media_offset = 0;
  std::vector<int32_t> labels;  // one per position, -100: no loss
};

// Dropout of a training step, where the original's Q-Formers have it (BERT's hidden and
// attention-probability dropout, `p` 0.1 in the original): masks drawn from `seed`, so a step is
// reproducible (and a resumed run bit-equal) given the seed.
struct StepDropout {
  float p = 0;
  uint32_t seed = 0;
};

// The sizes an example must have.
struct BranchShape {
  int64_t queries = 0;        // soft prompt rows (the branch Q-Former's query tokens)
  // rows per unit — features: the BLIP-2 Q-Former's queries (video), 1 (audio); media: 3·S (video), mel (audio)
  int64_t unit_rows = 0;
  int64_t feature_width = 0;  // width of a row — features: their width; media: S (video), frames (audio)
  int64_t max_units = 0;      // rows of the position embedding
  bool media = false;         // examples carry preprocessed media, not frozen features
};

class BranchTrainer {
 public:
  // Reads the branch's trainable tensors from a projector GGUF as f32 copies (with `unfreeze`, the
  // whole branch: its frozen parts as f32 copies too). Throws vl::Error FILE_NOT_FOUND /
  // INVALID_MODEL / MISSING_TENSOR, DIMENSION_MISMATCH when llama_proj does not output the LLM's
  // width, INVALID_ARGUMENT for a Q-Former to unfreeze in the audio branch.
  BranchTrainer(std::shared_ptr<const FrozenLlama> llm, const std::string& projector, Branch branch,
                Unfreeze unfreeze = {});
  ~BranchTrainer();
  BranchTrainer(const BranchTrainer&) = delete;
  BranchTrainer& operator=(const BranchTrainer&) = delete;

  Branch branch() const { return branch_; }
  const BranchShape& shape() const { return shape_; }
  // The trainable tensors, named as in the projector GGUF.
  const std::vector<ggml_tensor*>& params() const { return tensors_->params(); }
  int64_t steps() const { return tensors_->steps(); }

  // The answer loss of `batch`, the mean over all its labelled positions (no update). Throws
  // INVALID_ARGUMENT / DIMENSION_MISMATCH on a bad example, ABORTED when `abort` is set.
  float loss(const std::vector<BranchExample>& batch, int threads, const AbortFlag* abort) const;
  // The branch's output for one example's input (its tokens are not read): the soft prompt,
  // [queries][n_embd] row-major, by the training graph.
  std::vector<float> soft_prompt(const BranchExample& example, int threads) const;
  // loss() of a fixed batch as one graph built once and recomputed on the current tensor values
  // (finite differences); `batch` must outlive it.
  std::function<float()> loss_function(const std::vector<BranchExample>& batch, int threads) const;
  // The same loss and its gradient for every tensor of params(), in that order.
  float gradients(const std::vector<BranchExample>& batch, int threads, const AbortFlag* abort,
                  std::vector<std::vector<float>>& grads) const;
  // One AdamW step on the batch's loss (its gradient accumulated over the batch's examples);
  // returns the loss before the update.
  float step(const std::vector<BranchExample>& batch, const AdamWStep& hp, const StepDropout& dropout, int threads,
             const AbortFlag* abort);

  // Writes params, AdamW moments, the step count and `state` (the caller's data order, schedule…)
  // to a GGUF, atomically (a temporary file renamed over `path`).
  void save_checkpoint(const std::string& path, const std::string& state) const;
  // Restores what save_checkpoint wrote and returns its `state`. Throws FILE_NOT_FOUND,
  // INVALID_MODEL (another branch, tensors of other shapes).
  std::string restore_checkpoint(const std::string& path);
  // Copies the projector GGUF `source` to `out` (atomically) with the trained tensors replaced.
  void export_projector(const std::string& source, const std::string& out) const;

  // (name, values) of every trainable tensor, then of every AdamW moment (`<name>.adam_m`, `.adam_v`).
  std::vector<std::pair<std::string, std::vector<float>>> snapshot() const { return tensors_->snapshot(); }

  // Overwrites one entry of a trainable tensor (for finite differences).
  void set_entry(size_t param, size_t index, float value) { tensors_->set_entry(param, index, value); }
  float entry(size_t param, size_t index) const { return tensors_->entry(param, index); }

 private:
  class BatchGraph;
  // An example's input as a graph input (checked against shape()), and the branch on it: the head
  // over features, or the whole branch over media.
  ggml_tensor* features_input(ggml_context* ctx, const BranchExample& example) const;
  ggml_tensor* head(ggml_context* ctx, ggml_tensor* features, const graph::TrainingGraphScope::Dropout& dropout) const;
  // Graph nodes one example needs (its branch graph, the LLaMA loss, their backward).
  size_t nodes_per_example() const;

  std::shared_ptr<const FrozenLlama> llm_;
  Branch branch_;
  Unfreeze unfreeze_;
  BranchShape shape_;
  graph::VisionBranch video_;  // its head (video Q-Former, frame positions, llama_proj); all of it with unfreeze
  graph::AudioBranch audio_;   // likewise
  std::unique_ptr<TrainableTensors> tensors_;
  // f32 copies of the rest of the branch (with unfreeze): a training graph reads no packed or quantized weight
  std::vector<ggml_tensor*> frozen_;
  ggml_context* frozen_ctx_ = nullptr;
  ggml_backend_buffer_t frozen_buffer_ = nullptr;
};

}  // namespace vl::train
