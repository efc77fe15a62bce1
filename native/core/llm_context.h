#pragma once
// A libllama context holding n_seq sequences in one unified KV cache (llama_context_params
// n_seq_max, kv_unified): each sequence is a separate conversation state, decoded with its own
// seq_id; n_ctx cells are shared by all of them. Jobs (evaluate, generate) run one at a time per
// context; a batch is built item by item with each item's seq_id, so decoding several
// sequences in one llama_decode is a change to the job queue, not to the batch code.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/llm_model.h"
#include "core/llm_sampler.h"

namespace vl::llm {

// Every field is set by the caller (the TypeScript side holds the defaults).
struct ContextParams {
  uint32_t n_ctx;  // cells of the KV cache, shared by the sequences
  uint32_t n_seq;  // sequences
  int n_threads;
  uint32_t n_batch;
};

struct GenerateParams {
  SamplingParams sampling;
  int max_tokens;
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

class Context {
 public:
  // Throws Error NATIVE when libllama cannot create the context.
  Context(std::shared_ptr<Model> model, const ContextParams& params);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const Model& model() const { return *model_; }
  uint32_t n_ctx() const;
  uint32_t n_seq() const { return static_cast<uint32_t>(sequences_.size()); }
  // Positions of sequence `seq` now in the cache (0..n_past-1). Throws INVALID_ARGUMENT for a bad id.
  int64_t n_past(int seq) const;

  // Drops positions >= n_keep of `seq` from the KV cache (0 empties the sequence). Throws NATIVE
  // while a job runs rather than wait for it.
  void truncate(int seq, int64_t n_keep);
  // Decodes `parts` into `seq` at positions n_past.., requesting logits for the very last item.
  // Returns false when `abort` was set (n_past then says how far it got). Throws Error
  // DIMENSION_MISMATCH / INVALID_ARGUMENT / CONTEXT_OVERFLOW / NATIVE.
  bool evaluate(int seq, const std::vector<Part>& parts, const AbortFlag* abort);
  // Samples a continuation of `seq` until EOS, a stop string, max_tokens, a full context or an
  // abort; each sampled token's piece goes to `on_piece` as soon as it is known. Needs the logits
  // of the sequence's last position (its last evaluate).
  GenerateResult generate(int seq, const GenerateParams& params, const std::function<void(const std::string&)>& on_piece,
                          const AbortFlag* abort);
  // The logits of the last evaluated position of `seq` ([n_vocab]); empty when there are none.
  std::vector<float> last_logits(int seq) const;

 private:
  struct Sequence {
    int64_t n_past = 0;
    bool has_logits = false;  // the context's last output row is this sequence's last position
  };
  // Items of one llama_batch, each with its own sequence and position.
  struct BatchItems {
    std::vector<llama_pos> pos;
    std::vector<int32_t> n_seq_id;
    std::vector<llama_seq_id> seq_id;
    std::vector<llama_seq_id*> seq_ptr;
    std::vector<int8_t> logits;
    void add(llama_seq_id seq, llama_pos position, bool want_logits);
    llama_batch view(const llama_token* tokens, const float* embeddings);
  };

  Sequence& sequence(int seq);
  const Sequence& sequence(int seq) const;
  void check_parts(const std::vector<Part>& parts, int64_t& total) const;
  bool decode(int seq, const llama_token* tokens, const float* embeddings, int64_t n, bool logits_for_last);
  // `parts` as one run of embedding rows ([n_embd, total] in ggml order), tokens looked up.
  std::vector<float> as_embedding_rows(const std::vector<Part>& parts, int64_t total) const;
  void sync_position_after_failure(int seq);
  // Marks `seq` as the owner of the context's output row (or nobody, with -1).
  void set_logits_owner(int seq);

  std::shared_ptr<Model> model_;
  llama_context* ctx_ = nullptr;
  uint32_t n_batch_;
  std::vector<Sequence> sequences_;
  // One job at a time; libllama's abort callback reads the running job's flag.
  std::mutex job_;
  std::atomic<const AbortFlag*> job_abort_{nullptr};
};

}  // namespace vl::llm
