#pragma once
// Pretraining a LLaMA with libllama's own trainer (llama_opt_init / llama_opt_epoch, ggml-opt's
// AdamW): next-token cross-entropy on every position of fixed-length windows, one optimizer step
// per window. libllama trains every f32 weight except token_embd.weight (it leaves the input
// embeddings as they are), so the file must hold f32 matrices and an output.weight of its own.
// Pure C++ (no N-API); errors are vl::Error.
#include <cstdint>
#include <memory>
#include <string>

#include "core/llm_model.h"
#include "ggml-opt.h"
#include "gguf.h"
#include "llama.h"

namespace vl::llm {

struct PretrainSetup {
  std::string path;       // the LLaMA GGUF to start from
  uint32_t window = 256;  // tokens per optimizer step: the training context
  uint32_t ubatch = 0;    // tokens per forward/backward pass (gradients add up over window / ubatch passes); 0: window
  int threads = 1;
  // AdamW; the learning rate is given per step.
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

class Pretrainer {
 public:
  // Throws INVALID_MODEL (unloadable; a matrix that is not f32; no output.weight) or INVALID_ARGUMENT
  // (a window libllama cannot take, an ubatch that does not divide it).
  explicit Pretrainer(const PretrainSetup& setup);
  ~Pretrainer();
  Pretrainer(const Pretrainer&) = delete;
  Pretrainer& operator=(const Pretrainer&) = delete;

  const Model& model() const { return *model_; }
  uint32_t window() const { return window_; }

  // One optimizer step at `learning_rate` on window() + 1 tokens: the first window() are the
  // input, the last window() the labels. Returns the window's mean loss (nats per token) before the step.
  // Throws INVALID_ARGUMENT for a token outside the vocabulary.
  double step(const int32_t* tokens, float learning_rate);

  // Writes the model's weights with the metadata of the file it was loaded from (llama_opt_init
  // rewrites the context length to the window), to `path` + ".tmp" first, then renamed onto `path`.
  // The file loaded may be gone by then: its metadata was read at construction.
  void save(const std::string& path) const;

 private:
  static ggml_opt_optimizer_params optimizer_params(void* self);
  void use_threads_in_training();

  PretrainSetup setup_;
  std::shared_ptr<Model> model_;
  std::unique_ptr<llama_context, decltype(&llama_free)> ctx_{nullptr, llama_free};
  ggml_opt_dataset_t dataset_ = nullptr;
  ggml_opt_result_t result_ = nullptr;
  std::unique_ptr<gguf_context, decltype(&gguf_free)> metadata_{nullptr, gguf_free};  // the loaded file's key/values
  uint32_t window_ = 0;
  float learning_rate_ = 0.0f;
};

}  // namespace vl::llm
