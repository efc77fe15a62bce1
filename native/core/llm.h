#pragma once
// libllama glue for the language model: loading, the tokenizer, decoding token batches and
// embedding batches (soft prompts) into one sequence, sampling, KV-cache bookkeeping.
// Pure C++ (no N-API). Errors are thrown as vl::llm::Error with a code the addon passes on.
//
// Lifetimes: a Context holds a shared_ptr to its Model, so the weights outlive every context
// that uses them whatever order the owners are released in.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "llama.h"

namespace vl::llm {

// Codes match VideoLlamaErrorCode on the TypeScript side.
struct Error : std::runtime_error {
  Error(std::string code, const std::string& message) : std::runtime_error(message), code(std::move(code)) {}
  std::string code;
};

// Routes libllama's and ggml's log to a small ring buffer instead of stderr (all of it to
// stderr too when VIDEO_LLAMA_LOG=1). Idempotent.
void capture_logs();

// A point in the log; warning/error lines logged after it are kept (the last few) so that an
// error message can say what libllama reported about the failed operation.
uint64_t log_mark();
std::string log_errors_since(uint64_t mark);

struct ModelParams {
  std::string path;
  // The GPU the layers may go to (none: the CPU only, whatever gpu_layers says).
  GpuChoice gpu;
  // Layers to offload to that GPU; a negative value keeps libllama's default (all).
  int gpu_layers = -1;
  // Map the file instead of reading it (see Model::load for why reading is the default).
  bool mmap = false;
  // Called from the loading thread with 0..1; returning false cancels the load.
  std::function<bool(float)> on_progress;
};

// Where token_embd.weight lies in the GGUF file, for reading rows without libllama internals.
struct TensorLocation {
  size_t offset = 0;  // from the start of the file
  ggml_type type = GGML_TYPE_COUNT;
  int64_t row_length = 0;
  int64_t rows = 0;
};

// Immutable weights and vocabulary; shared by the contexts created from it.
class Model {
 public:
  // Throws Error: INVALID_MODEL when the file is not a loadable LLaMA-family GGUF.
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
  // A GGUF metadata value as text, or "" when the key is absent.
  std::string meta(const std::string& key) const;
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
  Model(llama_model* model, std::string path, TensorLocation token_embd);
  llama_model* model_;
  const llama_vocab* vocab_;
  std::string path_;
  TensorLocation token_embd_;
  bool tokens_are_rows_;
};

struct ContextParams {
  uint32_t n_ctx = 0;  // 0 = the model's training context
  int n_threads = 4;
  uint32_t n_batch = 512;
};

struct SamplingParams {
  float temperature = 1.0f;  // <= 0: greedy
  int top_k = 50;            // <= 0: off
  float top_p = 0.9f;        // >= 1: off
  float repeat_penalty = 1.0f;
  uint32_t seed = LLAMA_DEFAULT_SEED;
};

enum class StopReason { Eos, StopString, MaxTokens, ContextFull, Aborted };
const char* stop_reason_name(StopReason reason);

struct GenerateParams {
  SamplingParams sampling;
  int max_tokens = 300;
  std::vector<std::string> stop_strings;
};

struct GenerateResult {
  std::vector<llama_token> evaluated;  // generated tokens now in the KV cache, in order
  std::string text;                    // bytes of every generated piece (EOS excluded)
  int sampled = 0;
  StopReason reason = StopReason::MaxTokens;
};

// One run of items to decode: either `n` token ids or `n` embeddings of `embedding_width`
// floats each (which must be the model's n_embd).
struct Part {
  const llama_token* tokens = nullptr;
  const float* embeddings = nullptr;
  int64_t embedding_width = 0;
  int64_t n = 0;
};

// A llama_context holding one sequence (seq 0): what has been decoded is positions 0..n_past-1.
class Context {
 public:
  // Throws Error INVALID_ARGUMENT / NATIVE when libllama cannot create the context.
  Context(std::shared_ptr<Model> model, const ContextParams& params);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const Model& model() const { return *model_; }
  uint32_t n_ctx() const;
  int64_t n_past() const { return n_past_; }

  // Drops positions >= n_keep from the KV cache.
  void truncate(int64_t n_keep);
  // Decodes `parts` at positions n_past.., requesting logits for the very last item.
  // Returns false when aborted (n_past then says how far it got). Throws Error
  // DIMENSION_MISMATCH / INVALID_ARGUMENT / CONTEXT_OVERFLOW / NATIVE.
  bool evaluate(const std::vector<Part>& parts);
  // Samples until EOS, a stop string, max_tokens, a full context or an abort; each sampled
  // token's piece goes to `on_piece` as soon as it is known. Needs logits of the last position.
  GenerateResult generate(const GenerateParams& params, const std::function<void(const std::string&)>& on_piece);
  // The logits of the last evaluated position ([n_vocab]); empty when there are none.
  std::vector<float> last_logits() const;

  // Thread-safe; checked between tokens and inside libllama's graph computation.
  void request_abort() { abort_.store(true); }
  void clear_abort() { abort_.store(false); }

 private:
  bool decode(const llama_token* tokens, const float* embeddings, int64_t n, bool logits_for_last);
  // `parts` as one run of embedding rows ([n_embd, total] in ggml order), tokens looked up.
  std::vector<float> as_embedding_rows(const std::vector<Part>& parts, int64_t total) const;
  void sync_position_after_failure();

  std::shared_ptr<Model> model_;
  llama_context* ctx_ = nullptr;
  uint32_t n_batch_;
  int64_t n_past_ = 0;
  // Position whose logits llama_get_logits_ith(-1) holds, or -1.
  int64_t logits_position_ = -1;
  std::atomic<bool> abort_{false};
};

}  // namespace vl::llm
