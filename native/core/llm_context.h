#pragma once
// A libllama context holding n_seq sequences in one unified KV cache (llama_context_params
// n_seq_max, kv_unified): each sequence is a separate conversation state, decoded with its own
// seq_id; n_ctx cells are shared by all of them. Work is done in steps (continuous batching):
// one step decodes, in one llama_decode, the items of several sequences (each generating
// sequence's last sampled token, chunks of prompts) and samples each generating sequence's next
// token from its own logits row. The caller (src/llm/batch.ts) decides what goes into each step
// and runs one step at a time.
#include <atomic>
#include <cstdint>
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


// One run of items to decode: either `n` token ids or `n` embeddings of `embedding_width`
// floats each (which must be the model's n_embd).
struct Part {
  const llama_token* tokens = nullptr;
  const float* embeddings = nullptr;
  int64_t embedding_width = 0;
  int64_t n = 0;
};

// Items of one sequence in a step; `logits` asks for the logits of the part's last item (a
// generating sequence then samples from them, another keeps a copy for last_logits).
struct StepItem {
  int seq = 0;
  Part part;
  bool logits = false;
};

// What a generating sequence sampled in a step.
struct Sampled {
  int seq = 0;
  llama_token token = -1;  // to decode in the next step; -1 when the generation has finished
  std::string piece;       // bytes of the sampled token (empty for EOS)
  int sampled = 0;  // tokens the generation has sampled so far (an EOS included)
  bool finished = false;
  StopReason reason = StopReason::MaxTokens;
};

struct StepResult {
  bool completed = true;  // false: `abort` was set (positions say how far each sequence got)
  std::vector<Sampled> sampled;
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
  // Makes `seq` a generating sequence: from now on a step that yields logits for it samples its
  // next token (with a sampler of `params`) instead of keeping the logits. Throws
  // INVALID_ARGUMENT for a bad id.
  void start_generation(int seq, const GenerateParams& params);
  void end_generation(int seq);
  // Decodes `items` (each at its sequence's next positions, a sequence's items in order; at most
  // n_batch in all) in one llama_decode, then samples each generating sequence that got logits.
  // Throws Error DIMENSION_MISMATCH / INVALID_ARGUMENT / CONTEXT_OVERFLOW / NATIVE.
  StepResult step(const std::vector<StepItem>& items, const AbortFlag* abort);
  // The logits of the last evaluated position of a sequence that is not generating ([n_vocab]);
  // empty when there are none.
  const std::vector<float>& last_logits(int seq) const;

 private:
  struct Generation {
    SamplerPtr sampler;
    GenerateParams params;
    std::string text;
    int sampled = 0;
  };
  struct Sequence {
    int64_t n_past = 0;
    std::vector<float> logits;               // of the last position, when not generating
    std::unique_ptr<Generation> generation;  // null: not generating
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
  void check_part(const Part& part) const;
  // Decodes items [begin, end) of the step in one llama_decode and takes their logits; false on abort.
  bool decode_pass(const std::vector<StepItem>& items, size_t begin, size_t end, bool as_rows, StepResult& result);
  // `part` as embedding rows ([n_embd, n] in ggml order), tokens looked up.
  std::vector<float> as_embedding_rows(const Part& part) const;
  void sync_positions_after_failure(const std::vector<StepItem>& items, size_t begin, size_t end);
  // Samples the next token of generating sequence `seq` from output row `row` of the last decode.
  Sampled sample(int seq, int32_t row);

  std::shared_ptr<Model> model_;
  llama_context* ctx_ = nullptr;
  uint32_t n_batch_;
  std::vector<Sequence> sequences_;
  // One step at a time; libllama's abort callback reads the running step's flag.
  std::mutex job_;
  std::atomic<const AbortFlag*> job_abort_{nullptr};
};

}  // namespace vl::llm
