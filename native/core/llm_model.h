#pragma once
// A language model loaded by libllama: immutable weights and vocabulary, shared by every context
// created from it (a Context holds a shared_ptr, so the weights outlive their last user whatever
// order the owners are released in). Pure C++ (no N-API); errors are vl::Error.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/llm_gguf_check.h"
#include "llama.h"

namespace vl::llm {

struct ModelParams {
  std::string path;
  // The GPU the layers may go to (none: the CPU only, whatever gpu_layers says).
  GpuChoice gpu;
  // Layers to offload to that GPU; a negative value keeps libllama's default (all).
  int gpu_layers = -1;
  // Map the file instead of reading it (see Model::load for why reading is the default).
  bool mmap = false;
  // Polled between tensors; when set, loading stops, frees what it loaded and throws ABORTED.
  const AbortFlag* abort = nullptr;
  // Called from the loading thread with 0..1.
  std::function<void(float)> on_progress;
};

class Model {
 public:
  // Throws Error: INVALID_MODEL when the file is not a loadable LLaMA-family GGUF, ABORTED.
  static std::shared_ptr<Model> load(const ModelParams& params);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  llama_model* raw() const { return model_; }
  // Width of the input embeddings a batch must carry (llama_model_n_embd_inp).
  int n_embd() const;
  int n_vocab() const;
  int n_ctx_train() const;
  int n_layer() const;
  std::string description() const;
  // tokenizer.chat_template, or "" when the file has none.
  std::string chat_template() const;

  bool adds_bos() const;
  bool is_valid_token(llama_token token) const { return token >= 0 && token < n_vocab(); }
  bool is_eog(llama_token token) const;

  // `parse_special` lets text such as "<s>" become the special token, as the original's
  // HuggingFace tokenizer does with the prompt text.
  std::vector<llama_token> tokenize(const std::string& text, bool add_bos, bool parse_special) const;
  // Bytes of one token's piece (may be an incomplete UTF-8 sequence for byte tokens).
  std::string piece(llama_token token) const;
  // Throws Error INVALID_ARGUMENT for an id outside the vocabulary.
  std::string detokenize(const std::vector<llama_token>& tokens, bool render_special) const;
  // Rows of token_embd.weight for `tokens`, as f32: [n_embd, tokens.size()] (ggml order),
  // i.e. what the model's input layer looks up for these ids.
  std::vector<float> token_embeddings(const std::vector<llama_token>& tokens) const;
  // Whether the input layer is nothing but that lookup (LLaMA: no per-token extras, no scale
  // applied to ids only), so that a token may be decoded as its row with the same result.
  bool tokens_are_rows() const { return tokens_are_rows_; }

 private:
  Model(llama_model* model, std::string path, const LlmFileFacts& facts);
  llama_model* model_;
  const llama_vocab* vocab_;
  std::string path_;
  TensorLocation token_embd_;
  bool tokens_are_rows_;
};

}  // namespace vl::llm
