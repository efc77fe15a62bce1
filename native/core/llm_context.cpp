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

void Context::truncate(int seq, int64_t n_keep) {
  // Called from the JS thread between steps: never wait for one there.
  std::unique_lock<std::mutex> lock(job_, std::try_to_lock);
  if (!lock) throw Error("NATIVE", "the context is running a step");
  Sequence& s = sequence(seq);
  if (n_keep < 0 || n_keep > s.n_past) {
    throw Error("INVALID_ARGUMENT", "cannot keep " + std::to_string(n_keep) + " of " + std::to_string(s.n_past) + " positions");
  }
  if (n_keep == s.n_past) return;
  llama_memory_seq_rm(llama_get_memory(ctx_), seq, static_cast<llama_pos>(n_keep), -1);
  s.n_past = n_keep;
  s.logits.clear();
}

void Context::start_generation(int seq, const GenerateParams& params) {
  Sequence& s = sequence(seq);
  auto generation = std::make_unique<Generation>();
  // The penalty window is the whole reply, as HF penalises every generated id when the prompt
  // is given as embeddings.
  generation->sampler = make_sampler(params.sampling, model_->raw(), static_cast<int>(n_ctx()));
  generation->params = params;
  s.generation = std::move(generation);
  s.logits.clear();
}

void Context::end_generation(int seq) { sequence(seq).generation.reset(); }

void Context::sync_positions_after_failure(const std::vector<StepItem>& items, size_t begin, size_t end) {
  // Ubatches decoded before an abort or a fatal error stay in the cache.
  for (size_t i = begin; i < end; ++i) {
    Sequence& s = sequence(items[i].seq);
    s.n_past = llama_memory_seq_pos_max(llama_get_memory(ctx_), items[i].seq) + 1;
    s.logits.clear();
  }
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

void Context::check_part(const Part& part) const {
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
}

std::vector<float> Context::as_embedding_rows(const Part& part) const {
  if (part.embeddings) return std::vector<float>(part.embeddings, part.embeddings + part.n * model_->n_embd());
  return model_->token_embeddings(std::vector<llama_token>(part.tokens, part.tokens + part.n));
}

StepResult Context::step(const std::vector<StepItem>& items, const AbortFlag* abort) {
  JobScope job(job_, job_abort_, abort);
  int64_t total = 0;
  std::vector<int64_t> needed(sequences_.size(), 0);
  for (const StepItem& item : items) {
    check_part(item.part);
    total += item.part.n;
    needed[static_cast<size_t>(item.seq)] = sequence(item.seq).n_past;
  }
  for (const StepItem& item : items) needed[static_cast<size_t>(item.seq)] += item.part.n;
  for (size_t seq = 0; seq < needed.size(); ++seq) {
    if (needed[seq] > static_cast<int64_t>(n_ctx())) {
      throw Error("CONTEXT_OVERFLOW", "sequence " + std::to_string(seq) + " needs " + std::to_string(needed[seq]) +
                                          " positions but the context holds " + std::to_string(n_ctx()));
    }
  }
  if (total > static_cast<int64_t>(n_batch_)) {
    throw Error("INVALID_ARGUMENT", "a step of " + std::to_string(total) + " items exceeds the batch size " + std::to_string(n_batch_));
  }
  StepResult result;
  if (is_aborted(abort)) {
    result.completed = false;
    return result;
  }
  // libllama takes a batch of ids or of embeddings, never both. When token rows are what the
  // input layer would look up, a step that holds both (a soft prompt beside other chats' tokens)
  // is decoded as rows in one pass: it costs what a text step does. Otherwise each maximal run
  // of one kind is its own pass (a sequence's items stay in order).
  const bool any_embeddings = std::any_of(items.begin(), items.end(), [](const StepItem& i) { return i.part.embeddings; });
  const bool as_rows = any_embeddings && model_->tokens_are_rows();
  size_t begin = 0;
  while (begin < items.size()) {
    size_t end = begin + 1;
    const bool kind = items[begin].part.embeddings != nullptr;
    while (end < items.size() && (as_rows || (items[end].part.embeddings != nullptr) == kind)) ++end;
    if (!decode_pass(items, begin, end, as_rows, result)) {
      result.completed = false;
      break;
    }
    begin = end;
  }
  return result;
}

bool Context::decode_pass(const std::vector<StepItem>& items, size_t begin, size_t end, bool as_rows, StepResult& result) {
  const bool embeddings = as_rows || items[begin].part.embeddings != nullptr;
  BatchItems batch;
  std::vector<llama_token> tokens;
  std::vector<float> rows;
  std::vector<int64_t> next(sequences_.size());
  for (size_t i = begin; i < end; ++i) next[static_cast<size_t>(items[i].seq)] = sequence(items[i].seq).n_past;
  for (size_t i = begin; i < end; ++i) {
    const StepItem& item = items[i];
    int64_t& position = next[static_cast<size_t>(item.seq)];
    for (int64_t k = 0; k < item.part.n; ++k) {
      batch.add(item.seq, static_cast<llama_pos>(position++), item.logits && k + 1 == item.part.n);
    }
    if (embeddings) {
      const std::vector<float> part_rows = as_embedding_rows(item.part);
      rows.insert(rows.end(), part_rows.begin(), part_rows.end());
    } else {
      tokens.insert(tokens.end(), item.part.tokens, item.part.tokens + item.part.n);
    }
  }
  const llama_batch view = batch.view(embeddings ? nullptr : tokens.data(), embeddings ? rows.data() : nullptr);
  const uint64_t mark = log_mark();
  const int32_t status = llama_decode(ctx_, view);
  if (status == 2) {
    sync_positions_after_failure(items, begin, end);
    return false;
  }
  if (status == 1) {
    throw Error("CONTEXT_OVERFLOW", "no room left in the context of " + std::to_string(n_ctx()) + " cells (shared by " +
                                        std::to_string(n_seq()) + " sequences) for a step of " + std::to_string(view.n_tokens) +
                                        " items");
  }
  if (status != 0) {
    sync_positions_after_failure(items, begin, end);
    throw Error("NATIVE", with_log("llama_decode failed with status " + std::to_string(status), mark));
  }
  int32_t row = 0;
  for (size_t i = begin; i < end; ++i) {
    const StepItem& item = items[i];
    Sequence& s = sequence(item.seq);
    s.n_past += item.part.n;
    row += static_cast<int32_t>(item.part.n);
    s.logits.clear();
    if (!item.logits) continue;
    if (s.generation) {
      result.sampled.push_back(sample(item.seq, row - 1));
    } else {
      const float* logits = llama_get_logits_ith(ctx_, row - 1);
      s.logits.assign(logits, logits + model_->n_vocab());
    }
  }
  return true;
}

Sampled Context::sample(int seq, int32_t row) {
  const Sequence& s = sequence(seq);
  Generation& g = *s.generation;
  Sampled out;
  out.seq = seq;
  out.finished = true;
  if (g.sampled >= g.params.max_tokens) return out;
  const llama_token token = llama_sampler_sample(g.sampler.get(), ctx_, row);
  out.sampled = ++g.sampled;
  if (model_->is_eog(token)) {
    out.reason = StopReason::Eos;
    return out;
  }
  const size_t appended_at = g.text.size();
  out.piece = model_->piece(token);
  g.text += out.piece;
  if (contains_stop(g.text, appended_at, g.params.stop_strings)) {
    out.reason = StopReason::StopString;
  } else if (g.sampled >= g.params.max_tokens) {
    // The last token's logits would not be used: it stays out of the cache.
    out.reason = StopReason::MaxTokens;
  } else if (s.n_past >= static_cast<int64_t>(n_ctx())) {
    out.reason = StopReason::ContextFull;
  } else {
    out.finished = false;
    out.token = token;
  }
  return out;
}

const std::vector<float>& Context::last_logits(int seq) const { return sequence(seq).logits; }

}  // namespace vl::llm
