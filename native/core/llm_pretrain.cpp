#include "core/llm_pretrain.h"

#include <cstdio>
#include <memory>

#include "core/llm_log.h"
#include "ggml-backend.h"
#include "gguf.h"

namespace vl::llm {

namespace {

struct GgufFree {
  void operator()(gguf_context* ctx) const { gguf_free(ctx); }
};
struct GgmlFree {
  void operator()(ggml_context* ctx) const { ggml_free(ctx); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufFree>;
using GgmlPtr = std::unique_ptr<ggml_context, GgmlFree>;

GgufPtr read_gguf(const std::string& path, ggml_context** data) {
  GgufPtr gguf(gguf_init_from_file(path.c_str(), {/*no_alloc=*/data == nullptr, /*ctx=*/data}));
  if (!gguf) throw Error("INVALID_MODEL", "could not read the GGUF " + path);
  return gguf;
}

// libllama's trainer silently skips a weight that is not f32 and never trains token_embd.weight,
// which a file without output.weight uses as its output layer too: refuse what it would not train.
GgufPtr check_trainable(const std::string& path) {
  GgufPtr gguf = read_gguf(path, nullptr);
  if (gguf_find_tensor(gguf.get(), "output.weight") < 0) {
    throw Error("INVALID_MODEL", path + " has no output.weight (its output layer is token_embd.weight, which libllama does not train)");
  }
  for (int64_t i = 0; i < gguf_get_n_tensors(gguf.get()); ++i) {
    const std::string name = gguf_get_tensor_name(gguf.get(), i);
    const ggml_type type = gguf_get_tensor_type(gguf.get(), i);
    if (name != "token_embd.weight" && type != GGML_TYPE_F32) {
      throw Error("INVALID_MODEL", path + ": " + name + " is " + ggml_type_name(type) + "; libllama trains f32 weights only");
    }
  }
  return gguf;
}

}  // namespace

Pretrainer::Pretrainer(const PretrainSetup& setup) : setup_(setup) {
  const uint32_t ubatch = setup.ubatch == 0 ? setup.window : setup.ubatch;
  // llama_opt_init asserts (aborting the process) on a window its passes do not divide.
  if (setup.window < 2 || ubatch > setup.window || setup.window % ubatch != 0) {
    throw Error("INVALID_ARGUMENT", "the window (" + std::to_string(setup.window) + " tokens) must be at least 2 and a multiple of ubatch (" +
                                        std::to_string(ubatch) + ")");
  }
  metadata_.reset(check_trainable(setup.path).release());
  ModelParams params;
  params.path = setup.path;
  params.trainable = true;
  model_ = Model::load(params);

  const uint64_t mark = log_mark();
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = setup.window;
  cp.n_batch = setup.window;
  cp.n_ubatch = ubatch;
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = std::max(1, setup.threads);
  // ggml has no f16 OUT_PROD (the KV cache's backward) and no flash-attention backward.
  cp.type_k = cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.no_perf = true;
  ctx_.reset(llama_init_from_model(model_->raw(), cp));
  if (!ctx_) throw Error("INVALID_ARGUMENT", with_log("libllama could not make a training context of " + std::to_string(setup.window) + " tokens", mark));
  window_ = llama_n_ctx(ctx_.get());
  if (window_ != setup.window) {
    throw Error("INVALID_ARGUMENT", "libllama rounds a context of " + std::to_string(setup.window) + " tokens to " + std::to_string(window_) +
                                        ": choose a window it keeps");
  }

  use_threads_in_training();

  llama_opt_params op{};
  op.n_ctx_train = window_;
  op.param_filter = llama_opt_param_filter_all;
  op.get_opt_pars = optimizer_params;
  op.get_opt_pars_ud = this;
  op.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
  llama_opt_init(ctx_.get(), model_->raw(), op);

  dataset_ = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, window_, window_, /*ndata=*/1, /*ndata_shard=*/1);
  result_ = ggml_opt_result_init();
}

Pretrainer::~Pretrainer() {
  if (result_) ggml_opt_result_free(result_);
  if (dataset_) ggml_opt_dataset_free(dataset_);
}

// libllama hands the context's thread count to its backends only when it decodes; its trainer
// computes through ggml-opt without doing so, and would run with the CPU backend's default
// (4 threads, spinning at barriers on a smaller machine). One decode of one token sets it.
void Pretrainer::use_threads_in_training() {
  llama_token bos = llama_vocab_bos(llama_model_get_vocab(model_->raw()));
  if (bos < 0) bos = 0;
  if (llama_decode(ctx_.get(), llama_batch_get_one(&bos, 1)) != 0) throw Error("NATIVE", "libllama could not run the training context");
  llama_memory_clear(llama_get_memory(ctx_.get()), true);
}

ggml_opt_optimizer_params Pretrainer::optimizer_params(void* self) {
  const Pretrainer& p = *static_cast<const Pretrainer*>(self);
  ggml_opt_optimizer_params out = ggml_opt_get_default_optimizer_params(nullptr);
  out.adamw.alpha = p.learning_rate_;
  out.adamw.beta1 = p.setup_.beta1;
  out.adamw.beta2 = p.setup_.beta2;
  out.adamw.eps = p.setup_.eps;
  out.adamw.wd = p.setup_.weight_decay;
  return out;
}

double Pretrainer::step(const int32_t* tokens, float learning_rate) {
  // libllama asserts on a label outside the vocabulary (aborting the process): check first.
  for (uint32_t i = 0; i <= window_; ++i) {
    if (!model_->is_valid_token(tokens[i])) {
      throw Error("INVALID_ARGUMENT", "token id " + std::to_string(tokens[i]) + " is outside the vocabulary [0, " +
                                          std::to_string(model_->n_vocab()) + ")");
    }
  }
  ggml_backend_tensor_set(ggml_opt_dataset_data(dataset_), tokens, 0, window_ * sizeof(int32_t));
  ggml_backend_tensor_set(ggml_opt_dataset_labels(dataset_), tokens + 1, 0, window_ * sizeof(int32_t));
  learning_rate_ = learning_rate;
  ggml_opt_result_reset(result_);
  llama_opt_epoch(ctx_.get(), dataset_, result_, /*result_eval=*/nullptr, /*idata_split=*/1, nullptr, nullptr);
  double loss = 0.0;
  ggml_opt_result_loss(result_, &loss, nullptr);
  return loss;
}

void Pretrainer::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  llama_model_save_to_file(model_->raw(), tmp.c_str());
  ggml_context* data = nullptr;
  GgufPtr saved = read_gguf(tmp, &data);
  GgmlPtr data_owner(data);
  GgufPtr out(gguf_init_empty());
  gguf_set_kv(out.get(), saved.get());
  gguf_set_kv(out.get(), metadata_.get());
  for (int64_t i = 0; i < gguf_get_n_tensors(saved.get()); ++i) {
    gguf_add_tensor(out.get(), ggml_get_tensor(data, gguf_get_tensor_name(saved.get(), i)));
  }
  if (!gguf_write_to_file(out.get(), tmp.c_str(), /*only_meta=*/false) || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("NATIVE", "could not write " + path);
  }
}

}  // namespace vl::llm
