#pragma once
// What every trainer of ours shares: f32 trainable tensors with their AdamW moments and step count
// (checkpointed together, so a resumed run is bit-equal to an uninterrupted one), and the graph of
// one optimizer step (forward, ggml's backward, one ggml_opt_step_adamw per tensor) on the CPU.
// Used by BranchTrainer (stages 1/2) and LlamaTrainer (the demo LLM's pretraining).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/train/cpu_run.h"
#include "ggml.h"
#include "gguf.h"

namespace vl::train {

// torch.optim.AdamW's hyper-parameters of one step; tensors of fewer than two dimensions (biases,
// norms) get no weight decay, as the original's runner (LAVIS RunnerBase.optimizer) groups them.
struct AdamWStep {
  float lr = 1e-4f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.05f;
};

// A GGUF file read whole (tensor data in `data`). Throws FILE_NOT_FOUND, INVALID_MODEL.
struct GgufFile {
  gguf_context* gguf = nullptr;
  ggml_context* data = nullptr;
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
};

// Writes `gguf` to `path` through a temporary file renamed over it: a reader never sees half a file.
void write_atomically(const gguf_context* gguf, const std::string& path);

// A f32 copy of `t`'s values (in a backend buffer or in memory), whatever its storage type.
std::vector<float> f32_values(const ggml_tensor* t);

// Trainable f32 tensors (ggml params) with two AdamW moments each and the count of steps taken.
class TrainableTensors {
 public:
  // f32 copies of `sources` (any type, any buffer), named as they are; moments zero.
  explicit TrainableTensors(const std::vector<const ggml_tensor*>& sources);
  ~TrainableTensors();
  TrainableTensors(const TrainableTensors&) = delete;
  TrainableTensors& operator=(const TrainableTensors&) = delete;

  const std::vector<ggml_tensor*>& params() const { return params_; }
  int64_t steps() const { return steps_; }
  void count_step() { ++steps_; }

  // One ggml_opt_step_adamw node per tensor, appended to `graph` (whose backward is built); the
  // hyper-parameter inputs it declares are returned with their values, for the caller to set.
  std::vector<std::pair<ggml_tensor*, std::vector<float>>> add_adamw(ggml_context* ctx, ggml_cgraph* graph,
                                                                     const AdamWStep& hp) const;

  // Adds the tensors, their moments and the step count (key `train.steps`) to `gguf`; they stay
  // referenced by it until it is written.
  void add_to(gguf_context* gguf) const;
  // Restores what add_to() wrote. Throws INVALID_MODEL naming `path` when a tensor is missing or
  // of another shape.
  void restore(const GgufFile& file, const std::string& path);
  // Removes the keys add_to() sets from `gguf`.
  static void remove_keys(gguf_context* gguf);

  // (name, values) of every trainable tensor, then of every AdamW moment (`<name>.adam_m`, `.adam_v`).
  std::vector<std::pair<std::string, std::vector<float>>> snapshot() const;
  // One entry of a trainable tensor (for finite differences).
  void set_entry(size_t param, size_t index, float value);
  float entry(size_t param, size_t index) const;

 private:
  std::vector<ggml_tensor*> params_, adam_m_, adam_v_;
  ggml_context* ctx_ = nullptr;
  ggml_backend_buffer_t buffer_ = nullptr;
  int64_t steps_ = 0;
};

// The graph of one training computation over `loss` (a scalar built in `ctx`): forward; with
// `with_grads` ggml's backward for every tensor of `tensors`; with `adamw` also their update.
// The loss and gradients may be aborted; the update, once they are done, is never cut short (a
// half-applied AdamW step could not be resumed).
class StepGraph {
 public:
  StepGraph(ggml_context* ctx, size_t max_nodes, ggml_tensor* loss, const TrainableTensors& tensors, bool with_grads,
            const AdamWStep* adamw, int threads, const AbortFlag* abort);
  // Runs it once the caller has set its own inputs; returns the loss (before the update).
  float compute();
  // The gradient of every tensor of `tensors`, in their order (after compute() with grads).
  std::vector<std::vector<float>> gradients() const;

 private:
  ggml_cgraph* node_range(ggml_context* ctx, int first, int last) const;

  const TrainableTensors& tensors_;
  CpuRun run_;
  int threads_;
  ggml_tensor* loss_;
  ggml_cgraph* graph_ = nullptr;      // everything, as allocated
  ggml_cgraph* gradients_ = nullptr;  // the loss and its backward: run with the abort flag
  ggml_cgraph* update_ = nullptr;     // the AdamW nodes: run without it
  std::vector<std::pair<ggml_tensor*, std::vector<float>>> adamw_inputs_;
};

}  // namespace vl::train
