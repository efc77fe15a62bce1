#include "core/llm_model.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/backend.h"
#include "core/llm_log.h"

namespace vl::llm {

namespace {

// libllama's progress callback: reports, and cancels the load when the job's flag is set.
struct ProgressBridge {
  const ModelParams* params;
  static bool call(float progress, void* data) {
    const ModelParams& p = *static_cast<ProgressBridge*>(data)->params;
    if (is_aborted(p.abort)) return false;
    if (p.on_progress) p.on_progress(progress);
    return true;
  }
};

}  // namespace

std::shared_ptr<Model> Model::load(const ModelParams& params) {
  ensure_backends_loaded();
  capture_logs();
  const LlmFileFacts facts = check_llm_file(params.path);
  if (is_aborted(params.abort)) throw Error("ABORTED", "loading " + params.path + " was aborted");

  const uint64_t mark = log_mark();
  llama_model_params mp = llama_model_default_params();
  // libllama would otherwise offload to every GPU registered in the process.
  ggml_backend_dev_t devices[] = {choose_gpu(params.gpu), nullptr};
  mp.devices = devices;
  if (params.gpu_layers >= 0) mp.n_gpu_layers = params.gpu_layers;
  // Read the weights by default instead of mapping them. On CPUs with ggml's repacked layouts
  // (AVX2, AVX-512, NEON) the matrices are copied into a repacked buffer anyway, and with a
  // mapping the file's pages stay in the process too: resident memory came to twice the
  // weights (docs/performance.md, "The language model"). Read, every weight is in memory once.
  // Mapping still pays when most layers go to a GPU, or several processes share one file.
  mp.load_mode = params.mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
  ProgressBridge bridge{&params};
  mp.progress_callback = ProgressBridge::call;
  mp.progress_callback_user_data = &bridge;
  llama_model* model = llama_model_load_from_file(params.path.c_str(), mp);
  // A cancelled load returns null too, having freed what it had loaded.
  if (!model && is_aborted(params.abort)) throw Error("ABORTED", "loading " + params.path + " was aborted");
  if (!model) throw Error("INVALID_MODEL", with_log("libllama could not load " + params.path, mark));
  return std::shared_ptr<Model>(new Model(model, params.path, facts));
}

Model::Model(llama_model* model, std::string path, const LlmFileFacts& facts)
    : model_(model), vocab_(llama_model_get_vocab(model)), path_(std::move(path)), token_embd_(facts.token_embd) {
  // Other architectures may add inputs derived from the ids (e.g. Gemma 3n's per-layer
  // embeddings): keep their tokens as ids.
  tokens_are_rows_ = facts.architecture == "llama" && token_embd_.row_length == n_embd();
}

Model::~Model() { llama_model_free(model_); }

int Model::n_embd() const { return llama_model_n_embd_inp(model_); }
int Model::n_vocab() const { return llama_vocab_n_tokens(vocab_); }
int Model::n_ctx_train() const { return llama_model_n_ctx_train(model_); }
int Model::n_layer() const { return llama_model_n_layer(model_); }
bool Model::adds_bos() const { return llama_vocab_get_add_bos(vocab_); }
bool Model::is_eog(llama_token token) const { return llama_vocab_is_eog(vocab_, token); }

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

}  // namespace vl::llm
