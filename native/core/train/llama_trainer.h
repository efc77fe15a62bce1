#pragma once
// Pretraining a LLaMA with every weight trainable: our own forward graph (llama_graph.h, the logits
// of libllama's LLaMA) with trainable f32 copies of token_embd, every block's norms, attention
// (q, k, v, output) and SwiGLU matrices, output_norm and the output layer; next-token cross-entropy
// on every position of token windows, gradients by ggml_build_backward_expand, AdamW by
// ggml_opt_step_adamw (optimizer.h). Checkpoints hold the weights, the AdamW moments and the step
// count, so a resumed run is bit-equal to an uninterrupted one. Pure C++ (no N-API).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/train/llama_graph.h"
#include "core/train/optimizer.h"

namespace vl::train {

// `count` windows of `length` + 1 tokens each, back to back: a window's first `length` tokens are the
// input, its last `length` the labels (the next token of each position).
struct TokenWindows {
  std::vector<int32_t> tokens;
  int64_t length = 0;
  int64_t count() const { return length > 0 ? static_cast<int64_t>(tokens.size()) / (length + 1) : 0; }
};

class LlamaTrainer {
 public:
  // Loads a LLaMA GGUF, or a checkpoint save_checkpoint() wrote (then with its moments and step
  // count). Throws FILE_NOT_FOUND, INVALID_MODEL, MISSING_TENSOR.
  explicit LlamaTrainer(const std::string& path);

  const LlamaHparams& hparams() const { return llm_.hparams(); }
  // The trainable tensors, named as in the GGUF.
  const std::vector<ggml_tensor*>& params() const { return tensors_->params(); }
  int64_t steps() const { return tensors_->steps(); }

  // The mean next-token loss over every position of every window and its gradient for every
  // tensor of params(), in that order. Throws INVALID_ARGUMENT for windows that do not fit the
  // model or a token outside the vocabulary.
  float gradients(const TokenWindows& windows, int threads, const AbortFlag* abort, std::vector<std::vector<float>>& grads) const;
  // The loss of fixed windows as one graph built once and recomputed on the current values (finite
  // differences); `windows` must outlive it.
  std::function<float()> loss_function(const TokenWindows& windows, int threads) const;
  // One AdamW step on the windows' mean loss; returns the loss before the update. ABORTED leaves the
  // weights as they were.
  float step(const TokenWindows& windows, const AdamWStep& hp, int threads, const AbortFlag* abort);

  // The LLaMA GGUF libllama loads: the loaded file's metadata and the trained weights in f32;
  // written atomically.
  void save_model(const std::string& path) const;
  // save_model()'s file plus the AdamW moments and the step count: this constructor resumes from it
  // (libllama does not load it: the moments are tensors it does not know).
  void save_checkpoint(const std::string& path) const;

  void set_entry(size_t param, size_t index, float value) { tensors_->set_entry(param, index, value); }
  float entry(size_t param, size_t index) const { return tensors_->entry(param, index); }

 private:
  class WindowsGraph;
  gguf_context* model_file(bool with_moments) const;

  FrozenLlama llm_;
  std::unique_ptr<TrainableTensors> tensors_;
  std::unique_ptr<gguf_context, decltype(&gguf_free)> metadata_{nullptr, gguf_free};  // the loaded file's key/values
};

}  // namespace vl::train
