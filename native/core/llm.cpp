#include "core/llm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>

#include "core/backend.h"
#include "core/error.h"
#include "gguf.h"

namespace vl::llm {

// ---------------------------------------------------------------------------------------------
// Logging

namespace {

constexpr size_t kKeptLogLines = 8;

struct LogState {
  std::mutex mutex;
  std::deque<std::pair<uint64_t, std::string>> errors;  // (sequence number, line)
  uint64_t lines = 0;
  std::string partial;  // libllama may log a line in several calls
  bool echo = false;
};

LogState& log_state() {
  static LogState state;
  return state;
}

void on_log(ggml_log_level level, const char* text, void*) {
  LogState& state = log_state();
  if (state.echo) std::fputs(text, stderr);
  // GGML_LOG_LEVEL_CONT continues the previous line at the previous line's level.
  static thread_local bool keeping = false;
  if (level != GGML_LOG_LEVEL_CONT) keeping = level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN;
  if (!keeping) return;
  std::lock_guard<std::mutex> lock(state.mutex);
  state.partial += text;
  size_t newline;
  while ((newline = state.partial.find('\n')) != std::string::npos) {
    std::string line = state.partial.substr(0, newline);
    state.partial.erase(0, newline + 1);
    if (line.empty()) continue;
    state.errors.emplace_back(++state.lines, std::move(line));
    if (state.errors.size() > kKeptLogLines) state.errors.pop_front();
  }
}

}  // namespace

void capture_logs() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("VIDEO_LLAMA_LOG");
    log_state().echo = env && std::strcmp(env, "") != 0 && std::strcmp(env, "0") != 0;
    llama_log_set(on_log, nullptr);
  });
}

uint64_t log_mark() {
  LogState& state = log_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  return state.lines;
}

std::string log_errors_since(uint64_t mark) {
  LogState& state = log_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  std::string out;
  for (const auto& [seq, line] : state.errors) {
    if (seq <= mark) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

static std::string with_log(const std::string& message, uint64_t mark) {
  const std::string log = log_errors_since(mark);
  return log.empty() ? message : message + " (libllama: " + log + ")";
}

// ---------------------------------------------------------------------------------------------
// Model

namespace {

struct GgufDeleter {
  void operator()(gguf_context* ctx) const { gguf_free(ctx); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;

GgufPtr open_gguf_metadata(const std::string& path) {
  gguf_init_params params = {/*no_alloc =*/true, /*ctx =*/nullptr};
  return GgufPtr(gguf_init_from_file(path.c_str(), params));
}

std::string gguf_string(const gguf_context* ctx, const char* key) {
  const int64_t id = gguf_find_key(ctx, key);
  if (id < 0 || gguf_get_kv_type(ctx, id) != GGUF_TYPE_STRING) return "";
  return gguf_get_val_str(ctx, id);
}

// Rejects files libllama would misread or that are plainly another kind of GGUF, with a
// message that says what the file is.
void check_is_llm(const gguf_context* ctx, const std::string& path) {
  const std::string arch = gguf_string(ctx, "general.architecture");
  if (arch == "video-llama-projector") {
    throw Error("INVALID_MODEL", path + " is a Video-LLaMA projector GGUF (general.architecture = " + arch +
                                     "), not a language model; pass it as the projector");
  }
  if (arch.empty()) throw Error("INVALID_MODEL", path + " has no general.architecture: not a model GGUF");
  if (gguf_find_tensor(ctx, "token_embd.weight") < 0) {
    throw Error("INVALID_MODEL", path + " (general.architecture = " + arch +
                                     ") has no token_embd.weight tensor: not a LLaMA-family language model");
  }
}

// libllama GGML_ASSERTs (aborting the process) on some out-of-range hyper-parameters instead of
// failing the load: a block count outside 1..LLAMA_MAX_LAYERS (512 in llama-hparams.h) at load,
// a negative or NaN norm epsilon at the first decode. Reject those here with the key and value.
void check_hparams(const gguf_context* ctx, const std::string& arch, const std::string& path) {
  constexpr uint32_t kMaxLayers = 512;
  const std::string blocks_key = arch + ".block_count";
  const int64_t blocks = gguf_find_key(ctx, blocks_key.c_str());
  if (blocks >= 0 && gguf_get_kv_type(ctx, blocks) == GGUF_TYPE_UINT32) {
    const uint32_t n = gguf_get_val_u32(ctx, blocks);
    if (n < 1 || n > kMaxLayers) {
      throw Error("INVALID_MODEL", path + " has " + blocks_key + " = " + std::to_string(n) + ", expected 1.." +
                                       std::to_string(kMaxLayers));
    }
  }
  for (const char* suffix : {".attention.layer_norm_rms_epsilon", ".attention.layer_norm_epsilon"}) {
    const std::string key = arch + suffix;
    const int64_t id = gguf_find_key(ctx, key.c_str());
    if (id < 0 || gguf_get_kv_type(ctx, id) != GGUF_TYPE_FLOAT32) continue;
    const float eps = gguf_get_val_f32(ctx, id);
    if (!std::isfinite(eps) || eps < 0.0f) {
      throw Error("INVALID_MODEL", path + " has " + key + " = " + std::to_string(eps) + ", expected a finite number >= 0");
    }
  }
}

TensorLocation locate_token_embd(const gguf_context* ctx) {
  const int64_t id = gguf_find_tensor(ctx, "token_embd.weight");
  const int64_t* ne = gguf_get_tensor_ne(ctx, id);
  TensorLocation loc;
  loc.offset = gguf_get_data_offset(ctx) + gguf_get_tensor_offset(ctx, id);
  loc.type = gguf_get_tensor_type(ctx, id);
  loc.row_length = ne[0];
  loc.rows = ne[1];
  return loc;
}

struct ProgressBridge {
  const std::function<bool(float)>* callback;
  static bool call(float progress, void* data) { return (*static_cast<ProgressBridge*>(data)->callback)(progress); }
};

}  // namespace

std::shared_ptr<Model> Model::load(const ModelParams& params) {
  ensure_backends_loaded();
  capture_logs();
  const uint64_t mark = log_mark();
  GgufPtr meta = open_gguf_metadata(params.path);
  if (!meta) {
    throw Error("INVALID_MODEL", with_log(params.path + " is not a readable GGUF file (truncated or corrupt)", mark));
  }
  check_is_llm(meta.get(), params.path);
  check_hparams(meta.get(), gguf_string(meta.get(), "general.architecture"), params.path);

  llama_model_params mp = llama_model_default_params();
  // libllama would otherwise offload to every GPU registered in the process.
  ggml_backend_dev_t devices[] = {nullptr, nullptr};
  try {
    devices[0] = choose_gpu(params.gpu);
  } catch (const vl::Error& e) {
    throw Error(e.code(), e.what());
  }
  mp.devices = devices;
  if (params.gpu_layers >= 0) mp.n_gpu_layers = params.gpu_layers;
  // Read the weights by default instead of mapping them. On CPUs with ggml's repacked layouts
  // (AVX2, AVX-512, NEON) the matrices are copied into a repacked buffer anyway, and with a
  // mapping the file's pages stay in the process too: resident memory came to twice the
  // weights (docs/performance.md, "The language model"). Read, every weight is in memory once. Mapping still
  // pays when most layers go to a GPU, or several processes share one file.
  mp.load_mode = params.mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
  ProgressBridge bridge{&params.on_progress};
  if (params.on_progress) {
    mp.progress_callback = ProgressBridge::call;
    mp.progress_callback_user_data = &bridge;
  }
  llama_model* model = llama_model_load_from_file(params.path.c_str(), mp);
  if (!model) throw Error("INVALID_MODEL", with_log("libllama could not load " + params.path, mark));
  return std::shared_ptr<Model>(new Model(model, params.path, locate_token_embd(meta.get())));
}

Model::Model(llama_model* model, std::string path, TensorLocation token_embd)
    : model_(model), vocab_(llama_model_get_vocab(model)), path_(std::move(path)), token_embd_(token_embd) {
  // Other architectures may add inputs derived from the ids (e.g. Gemma 3n's per-layer
  // embeddings): keep their tokens as ids.
  tokens_are_rows_ = meta("general.architecture") == "llama" && token_embd_.row_length == n_embd();
}

Model::~Model() { llama_model_free(model_); }

int Model::n_embd() const { return llama_model_n_embd_inp(model_); }
int Model::n_vocab() const { return llama_vocab_n_tokens(vocab_); }
int Model::n_ctx_train() const { return llama_model_n_ctx_train(model_); }
int Model::n_layer() const { return llama_model_n_layer(model_); }
bool Model::adds_bos() const { return llama_vocab_get_add_bos(vocab_); }
bool Model::is_eog(llama_token token) const { return llama_vocab_is_eog(vocab_, token); }

std::string Model::meta(const std::string& key) const {
  const int32_t n = llama_model_meta_val_str(model_, key.c_str(), nullptr, 0);
  if (n < 0) return "";
  std::string out(static_cast<size_t>(n) + 1, '\0');
  llama_model_meta_val_str(model_, key.c_str(), out.data(), out.size());
  out.resize(n);
  return out;
}

std::string Model::description() const {
  char buf[256];
  const int32_t n = llama_model_desc(model_, buf, sizeof(buf));
  return n > 0 ? std::string(buf, std::min<size_t>(n, sizeof(buf) - 1)) : "";
}

std::string Model::chat_template() const {
  const char* tmpl = llama_model_chat_template(model_, nullptr);
  return tmpl ? tmpl : "";
}

std::vector<llama_token> Model::tokenize(const std::string& text, bool add_bos, bool parse_special) const {
  // A first call with room for a generous estimate; the negative return is the size needed.
  std::vector<llama_token> tokens(text.size() + 2);
  int32_t n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), add_bos, parse_special);
  if (n < 0 && n != INT32_MIN) {
    tokens.resize(-n);
    n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), add_bos, parse_special);
  }
  if (n < 0) throw Error("INVALID_ARGUMENT", "the text is too long to tokenize");
  tokens.resize(n);
  return tokens;
}

std::string Model::piece(llama_token token) const {
  char buf[64];
  int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof(buf), 0, false);
  if (n >= 0) return std::string(buf, n);
  std::string out(-n, '\0');
  n = llama_token_to_piece(vocab_, token, out.data(), static_cast<int32_t>(out.size()), 0, false);
  out.resize(std::max(n, 0));
  return out;
}

std::string Model::detokenize(const std::vector<llama_token>& tokens, bool render_special) const {
  for (llama_token t : tokens) {
    if (!is_valid_token(t)) {
      throw Error("INVALID_ARGUMENT", "token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                                          std::to_string(n_vocab()) + ")");
    }
  }
  std::string out(tokens.size() * 8 + 16, '\0');
  int32_t n = llama_detokenize(vocab_, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(),
                               static_cast<int32_t>(out.size()), false, render_special);
  if (n < 0) {
    out.resize(-n);
    n = llama_detokenize(vocab_, tokens.data(), static_cast<int32_t>(tokens.size()), out.data(),
                         static_cast<int32_t>(out.size()), false, render_special);
  }
  out.resize(std::max(n, 0));
  return out;
}

std::vector<float> Model::token_embeddings(const std::vector<llama_token>& tokens) const {
  const auto* traits = ggml_get_type_traits(token_embd_.type);
  if (token_embd_.type != GGML_TYPE_F32 && !traits->to_float) {
    throw Error("NATIVE", std::string("token_embd.weight has type ") + ggml_type_name(token_embd_.type) +
                              ", which ggml cannot convert to f32");
  }
  const size_t row_bytes = ggml_row_size(token_embd_.type, token_embd_.row_length);
  std::ifstream file(path_, std::ios::binary);
  if (!file) throw Error("FILE_NOT_FOUND", "cannot reopen " + path_);
  std::vector<uint8_t> row(row_bytes);
  std::vector<float> out(tokens.size() * token_embd_.row_length);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= token_embd_.rows) {
      throw Error("INVALID_ARGUMENT", "token id " + std::to_string(tokens[i]) + " is outside token_embd.weight");
    }
    const size_t at = token_embd_.offset + static_cast<size_t>(tokens[i]) * row_bytes;
    if (!file.seekg(static_cast<std::streamoff>(at)) ||
        !file.read(reinterpret_cast<char*>(row.data()), static_cast<std::streamsize>(row_bytes))) {
      throw Error("INVALID_MODEL", "cannot read row " + std::to_string(tokens[i]) + " of token_embd.weight in " + path_);
    }
    float* dst = out.data() + i * token_embd_.row_length;
    if (token_embd_.type == GGML_TYPE_F32) {
      std::memcpy(dst, row.data(), row_bytes);
    } else {
      traits->to_float(row.data(), dst, token_embd_.row_length);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sampling

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Eos: return "eos";
    case StopReason::StopString: return "stopString";
    case StopReason::MaxTokens: return "maxTokens";
    case StopReason::ContextFull: return "contextFull";
    case StopReason::Aborted: return "aborted";
  }
  return "unknown";
}

namespace {

struct SamplerDeleter {
  void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerDeleter>;

// The order of HuggingFace's generate() that the original uses: repetition penalty, then
// temperature, top-k, top-p, then a draw. The penalty window is the whole reply, as HF
// penalises every generated id when the prompt is given as embeddings.
SamplerPtr make_sampler(const SamplingParams& p, int n_vocab, int penalty_window) {
  SamplerPtr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
  if (p.repeat_penalty != 1.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_penalties(n_vocab, penalty_window, p.repeat_penalty, 0.0f, 0.0f));
  }
  if (p.temperature <= 0.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    return chain;
  }
  llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
  if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
  if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(p.seed));
  return chain;
}

// Whether a stop string ends inside text[from..]: only the tail can hold a new match.
bool contains_stop(const std::string& text, size_t appended_at, const std::vector<std::string>& stops) {
  for (const auto& stop : stops) {
    if (stop.empty()) continue;
    const size_t from = appended_at >= stop.size() ? appended_at - stop.size() + 1 : 0;
    if (text.find(stop, from) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Context

Context::Context(std::shared_ptr<Model> model, const ContextParams& params) : model_(std::move(model)) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = params.n_ctx;
  cp.n_batch = params.n_batch;
  cp.n_ubatch = params.n_batch;
  cp.n_seq_max = 1;
  cp.n_threads = params.n_threads;
  cp.n_threads_batch = params.n_threads;
  cp.no_perf = true;
  cp.abort_callback = [](void* data) { return static_cast<std::atomic<bool>*>(data)->load(); };
  cp.abort_callback_data = &abort_;
  const uint64_t mark = log_mark();
  ctx_ = llama_init_from_model(model_->raw(), cp);
  if (!ctx_) {
    throw Error("NATIVE", with_log("libllama could not create a context of " + std::to_string(params.n_ctx) + " tokens", mark));
  }
  n_batch_ = llama_n_batch(ctx_);
}

Context::~Context() { llama_free(ctx_); }

uint32_t Context::n_ctx() const { return llama_n_ctx(ctx_); }

void Context::truncate(int64_t n_keep) {
  if (n_keep < 0 || n_keep > n_past_) {
    throw Error("INVALID_ARGUMENT", "cannot keep " + std::to_string(n_keep) + " of " + std::to_string(n_past_) + " positions");
  }
  if (n_keep == n_past_) return;
  llama_memory_seq_rm(llama_get_memory(ctx_), 0, static_cast<llama_pos>(n_keep), -1);
  n_past_ = n_keep;
  if (logits_position_ >= n_keep) logits_position_ = -1;
}

void Context::sync_position_after_failure() {
  // Ubatches decoded before an abort or a fatal error stay in the cache.
  n_past_ = llama_memory_seq_pos_max(llama_get_memory(ctx_), 0) + 1;
  logits_position_ = -1;
}

bool Context::decode(const llama_token* tokens, const float* embeddings, int64_t n, bool logits_for_last) {
  const int n_embd = model_->n_embd();
  for (int64_t start = 0; start < n; start += n_batch_) {
    const int32_t count = static_cast<int32_t>(std::min<int64_t>(n_batch_, n - start));
    std::vector<llama_pos> pos(count);
    std::vector<int32_t> n_seq(count, 1);
    llama_seq_id seq0 = 0;
    std::vector<llama_seq_id*> seq(count, &seq0);
    std::vector<int8_t> want(count, 0);
    for (int32_t i = 0; i < count; ++i) pos[i] = static_cast<llama_pos>(n_past_ + i);
    const bool last_chunk = start + count == n;
    if (logits_for_last && last_chunk) want[count - 1] = 1;
    llama_batch batch = {count,
                         tokens ? const_cast<llama_token*>(tokens + start) : nullptr,
                         embeddings ? const_cast<float*>(embeddings + start * n_embd) : nullptr,
                         pos.data(), n_seq.data(), seq.data(), want.data()};
    const uint64_t mark = log_mark();
    const int32_t status = llama_decode(ctx_, batch);
    if (status == 2) {
      sync_position_after_failure();
      return false;
    }
    if (status == 1) {
      throw Error("CONTEXT_OVERFLOW", "no room left in the context of " + std::to_string(n_ctx()) + " tokens for " +
                                          std::to_string(n - start) + " more items at position " + std::to_string(n_past_));
    }
    if (status != 0) {
      sync_position_after_failure();
      throw Error("NATIVE", with_log("llama_decode failed with status " + std::to_string(status), mark));
    }
    n_past_ += count;
    if (logits_for_last && last_chunk) logits_position_ = n_past_ - 1;
  }
  return true;
}

bool Context::evaluate(const std::vector<Part>& parts) {
  int64_t total = 0;
  for (const auto& part : parts) {
    if ((part.tokens == nullptr) == (part.embeddings == nullptr) || part.n <= 0) {
      throw Error("INVALID_ARGUMENT", "each part must hold a positive number of tokens or of embeddings");
    }
    if (part.embeddings && part.embedding_width != model_->n_embd()) {
      throw Error("DIMENSION_MISMATCH", "an embedding has width " + std::to_string(part.embedding_width) +
                                            " but the language model's embedding width (n_embd) is " +
                                            std::to_string(model_->n_embd()));
    }
    if (part.tokens) {
      for (int64_t i = 0; i < part.n; ++i) {
        if (!model_->is_valid_token(part.tokens[i])) {
          throw Error("INVALID_ARGUMENT", "token id " + std::to_string(part.tokens[i]) + " is outside the vocabulary [0, " +
                                              std::to_string(model_->n_vocab()) + ")");
        }
      }
    }
    total += part.n;
  }
  if (n_past_ + total > n_ctx()) {
    throw Error("CONTEXT_OVERFLOW", "the prompt needs " + std::to_string(n_past_ + total) +
                                        " positions but the context holds " + std::to_string(n_ctx()));
  }
  if (abort_.load()) return false;
  // libllama takes a batch of ids or of embeddings, never both: a soft prompt such as
  // [40 tokens][32 vectors][20 tokens] would cost three passes over the weights, each at a
  // small batch, where a text prompt of the same length costs one. Decoded as rows, it costs
  // what the text does (the rows are what the input layer would look up).
  const bool mixed = std::any_of(parts.begin(), parts.end(), [](const Part& p) { return p.embeddings; }) &&
                     std::any_of(parts.begin(), parts.end(), [](const Part& p) { return p.tokens; });
  if (mixed && model_->tokens_are_rows()) {
    const std::vector<float> rows = as_embedding_rows(parts, total);
    return decode(nullptr, rows.data(), total, true);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    if (abort_.load()) return false;
    const Part& part = parts[i];
    if (!decode(part.tokens, part.embeddings, part.n, i + 1 == parts.size())) return false;
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

GenerateResult Context::generate(const GenerateParams& params, const std::function<void(const std::string&)>& on_piece) {
  if (logits_position_ < 0 || logits_position_ != n_past_ - 1) {
    throw Error("INVALID_ARGUMENT", "generate() needs the logits of the last position: evaluate a prompt first");
  }
  SamplerPtr sampler = make_sampler(params.sampling, model_->n_vocab(), static_cast<int>(n_ctx()));
  GenerateResult result;
  for (;;) {
    if (abort_.load()) {
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
    if (n_past_ >= static_cast<int64_t>(n_ctx())) {
      result.reason = StopReason::ContextFull;
      break;
    }
    if (!decode(&token, nullptr, 1, true)) {
      result.reason = StopReason::Aborted;
      break;
    }
    result.evaluated.push_back(token);
  }
  return result;
}

std::vector<float> Context::last_logits() const {
  if (logits_position_ < 0) return {};
  const float* logits = llama_get_logits_ith(ctx_, -1);
  if (!logits) return {};
  return std::vector<float>(logits, logits + model_->n_vocab());
}

}  // namespace vl::llm
