#include "core/llm_context.h"

#include <algorithm>

#include "core/llm_log.h"

namespace vl::llm {

namespace {

// Sets the job's abort flag for libllama's abort callback while a job runs.
class JobScope {
 public:
  JobScope(std::mutex& mutex, std::atomic<const AbortFlag*>& slot, const AbortFlag* abort) : lock_(mutex), slot_(slot) {
    slot_.store(abort);
  }
  ~JobScope() { slot_.store(nullptr); }

 private:
  std::lock_guard<std::mutex> lock_;
  std::atomic<const AbortFlag*>& slot_;
};

bool job_aborted(void* slot) { return is_aborted(static_cast<std::atomic<const AbortFlag*>*>(slot)->load()); }

}  // namespace

Context::Context(std::shared_ptr<Model> model, const ContextParams& params) : model_(std::move(model)) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = params.n_ctx;
  cp.n_batch = params.n_batch;
  cp.n_ubatch = params.n_batch;
  cp.n_seq_max = params.n_seq;
  // One buffer for every sequence: each may grow to n_ctx while the others are short.
  cp.kv_unified = true;
  cp.n_threads = params.n_threads;
  cp.n_threads_batch = params.n_threads;
  cp.no_perf = true;
  cp.abort_callback = job_aborted;
  cp.abort_callback_data = &job_abort_;
  const uint64_t mark = log_mark();
  ctx_ = llama_init_from_model(model_->raw(), cp);
  if (!ctx_) {
    throw Error("NATIVE", with_log("libllama could not create a context of " + std::to_string(params.n_ctx) + " tokens and " +
                                       std::to_string(params.n_seq) + " sequences", mark));
  }
  n_batch_ = llama_n_batch(ctx_);
  sequences_.resize(params.n_seq);
}

Context::~Context() { llama_free(ctx_); }

uint32_t Context::n_ctx() const { return llama_n_ctx(ctx_); }

Context::Sequence& Context::sequence(int seq) {
  return const_cast<Sequence&>(static_cast<const Context*>(this)->sequence(seq));
}

const Context::Sequence& Context::sequence(int seq) const {
  if (seq < 0 || seq >= static_cast<int>(sequences_.size())) {
    throw Error("INVALID_ARGUMENT", "sequence " + std::to_string(seq) + " does not exist; the context has " +
                                        std::to_string(sequences_.size()));
  }
  return sequences_[static_cast<size_t>(seq)];
}

int64_t Context::n_past(int seq) const { return sequence(seq).n_past; }

void Context::set_logits_owner(int seq) {
  for (size_t i = 0; i < sequences_.size(); ++i) sequences_[i].has_logits = static_cast<int>(i) == seq;
}

void Context::truncate(int seq, int64_t n_keep) {
  // Called from the JS thread: never wait for a job there.
  std::unique_lock<std::mutex> lock(job_, std::try_to_lock);
  if (!lock) throw Error("NATIVE", "the context is running a job");
  Sequence& s = sequence(seq);
  if (n_keep < 0 || n_keep > s.n_past) {
    throw Error("INVALID_ARGUMENT", "cannot keep " + std::to_string(n_keep) + " of " + std::to_string(s.n_past) + " positions");
  }
  if (n_keep == s.n_past) return;
  llama_memory_seq_rm(llama_get_memory(ctx_), seq, static_cast<llama_pos>(n_keep), -1);
  s.n_past = n_keep;
  s.has_logits = false;
}

void Context::sync_position_after_failure(int seq) {
  // Ubatches decoded before an abort or a fatal error stay in the cache.
  sequence(seq).n_past = llama_memory_seq_pos_max(llama_get_memory(ctx_), seq) + 1;
  set_logits_owner(-1);
}

void Context::BatchItems::add(llama_seq_id seq, llama_pos position, bool want_logits) {
  pos.push_back(position);
  n_seq_id.push_back(1);
  seq_id.push_back(seq);
  logits.push_back(want_logits ? 1 : 0);
}

llama_batch Context::BatchItems::view(const llama_token* tokens, const float* embeddings) {
  seq_ptr.resize(seq_id.size());
  for (size_t i = 0; i < seq_id.size(); ++i) seq_ptr[i] = &seq_id[i];
  return {static_cast<int32_t>(pos.size()), const_cast<llama_token*>(tokens), const_cast<float*>(embeddings),
          pos.data(), n_seq_id.data(), seq_ptr.data(), logits.data()};
}

bool Context::decode(int seq, const llama_token* tokens, const float* embeddings, int64_t n, bool logits_for_last) {
  Sequence& s = sequence(seq);
  const int n_embd = model_->n_embd();
  for (int64_t start = 0; start < n; start += n_batch_) {
    const int64_t count = std::min<int64_t>(n_batch_, n - start);
    const bool last_chunk = start + count == n;
    BatchItems items;
    for (int64_t i = 0; i < count; ++i) {
      items.add(seq, static_cast<llama_pos>(s.n_past + i), logits_for_last && last_chunk && i + 1 == count);
    }
    const llama_batch batch = items.view(tokens ? tokens + start : nullptr, embeddings ? embeddings + start * n_embd : nullptr);
    const uint64_t mark = log_mark();
    const int32_t status = llama_decode(ctx_, batch);
    if (status == 2) {
      sync_position_after_failure(seq);
      return false;
    }
    if (status == 1) {
      throw Error("CONTEXT_OVERFLOW", "no room left in the context of " + std::to_string(n_ctx()) + " cells (shared by " +
                                          std::to_string(n_seq()) + " sequences) for " + std::to_string(n - start) +
                                          " more items at position " + std::to_string(s.n_past));
    }
    if (status != 0) {
      sync_position_after_failure(seq);
      throw Error("NATIVE", with_log("llama_decode failed with status " + std::to_string(status), mark));
    }
    s.n_past += count;
    // The context's output row now belongs to the last item of this batch, if it asked for one.
    set_logits_owner(logits_for_last && last_chunk ? seq : -1);
  }
  return true;
}

void Context::check_parts(const std::vector<Part>& parts, int64_t& total) const {
  total = 0;
  for (const auto& part : parts) {
    if ((part.tokens == nullptr) == (part.embeddings == nullptr) || part.n <= 0) {
      throw Error("INVALID_ARGUMENT", "each part must hold a positive number of tokens or of embeddings");
    }
    if (part.embeddings && part.embedding_width != model_->n_embd()) {
      throw Error("DIMENSION_MISMATCH", "an embedding has width " + std::to_string(part.embedding_width) +
                                            " but the language model's embedding width (n_embd) is " +
                                            std::to_string(model_->n_embd()));
    }
    for (int64_t i = 0; part.tokens && i < part.n; ++i) {
      if (!model_->is_valid_token(part.tokens[i])) {
        throw Error("INVALID_ARGUMENT", "token id " + std::to_string(part.tokens[i]) + " is outside the vocabulary [0, " +
                                            std::to_string(model_->n_vocab()) + ")");
      }
    }
    total += part.n;
  }
}

bool Context::evaluate(int seq, const std::vector<Part>& parts, const AbortFlag* abort) {
  JobScope job(job_, job_abort_, abort);
  int64_t total = 0;
  check_parts(parts, total);
  const int64_t n_past = sequence(seq).n_past;
  if (n_past + total > n_ctx()) {
    throw Error("CONTEXT_OVERFLOW", "the prompt needs " + std::to_string(n_past + total) +
                                        " positions but the context holds " + std::to_string(n_ctx()));
  }
  if (is_aborted(abort)) return false;
  // libllama takes a batch of ids or of embeddings, never both: a soft prompt such as
  // [40 tokens][32 vectors][20 tokens] would cost three passes over the weights, each at a
  // small batch, where a text prompt of the same length costs one. Decoded as rows, it costs
  // what the text does (the rows are what the input layer would look up).
  const bool mixed = std::any_of(parts.begin(), parts.end(), [](const Part& p) { return p.embeddings; }) &&
                     std::any_of(parts.begin(), parts.end(), [](const Part& p) { return p.tokens; });
  if (mixed && model_->tokens_are_rows()) {
    const std::vector<float> rows = as_embedding_rows(parts, total);
    return decode(seq, nullptr, rows.data(), total, true);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    if (is_aborted(abort)) return false;
    const Part& part = parts[i];
    if (!decode(seq, part.tokens, part.embeddings, part.n, i + 1 == parts.size())) return false;
  }
  return true;
}

std::vector<float> Context::as_embedding_rows(const std::vector<Part>& parts, int64_t total) const {
  const int64_t width = model_->n_embd();
  std::vector<float> rows;
  rows.reserve(static_cast<size_t>(total * width));
  for (const Part& part : parts) {
    if (part.embeddings) {
      rows.insert(rows.end(), part.embeddings, part.embeddings + part.n * width);
    } else {
      const std::vector<float> looked_up = model_->token_embeddings(std::vector<llama_token>(part.tokens, part.tokens + part.n));
      rows.insert(rows.end(), looked_up.begin(), looked_up.end());
    }
  }
  return rows;
}

GenerateResult Context::generate(int seq, const GenerateParams& params, const std::function<void(const std::string&)>& on_piece,
                                 const AbortFlag* abort) {
  JobScope job(job_, job_abort_, abort);
  const Sequence& s = sequence(seq);
  if (!s.has_logits) {
    throw Error("INVALID_ARGUMENT", "generate() needs the logits of the sequence's last position: evaluate a prompt first");
  }
  // The penalty window is the whole reply, as HF penalises every generated id when the prompt
  // is given as embeddings.
  SamplerPtr sampler = make_sampler(params.sampling, model_->raw(), static_cast<int>(n_ctx()));
  GenerateResult result;
  for (;;) {
    if (is_aborted(abort)) {
      result.reason = StopReason::Aborted;
      break;
    }
    if (result.sampled >= params.max_tokens) {
      result.reason = StopReason::MaxTokens;
      break;
    }
    const llama_token token = llama_sampler_sample(sampler.get(), ctx_, -1);
    ++result.sampled;
    if (model_->is_eog(token)) {
      result.reason = StopReason::Eos;
      break;
    }
    const size_t appended_at = result.text.size();
    const std::string piece = model_->piece(token);
    result.text += piece;
    on_piece(piece);
    if (contains_stop(result.text, appended_at, params.stop_strings)) {
      result.reason = StopReason::StopString;
      break;
    }
    // The last token's logits would not be used: leave it out of the cache.
    if (result.sampled >= params.max_tokens) {
      result.reason = StopReason::MaxTokens;
      break;
    }
    if (s.n_past >= static_cast<int64_t>(n_ctx())) {
      result.reason = StopReason::ContextFull;
      break;
    }
    if (!decode(seq, &token, nullptr, 1, true)) {
      result.reason = StopReason::Aborted;
      break;
    }
    result.evaluated.push_back(token);
  }
  return result;
}

std::vector<float> Context::last_logits(int seq) const {
  if (!sequence(seq).has_logits) return {};
  const float* logits = llama_get_logits_ith(ctx_, -1);
  if (!logits) return {};
  return std::vector<float>(logits, logits + model_->n_vocab());
}

}  // namespace vl::llm
