#include "core/train/llama_reference.h"

#include <memory>

#include "core/backend.h"
#include "core/error.h"
#include "llama.h"

namespace vl::train {

std::vector<float> libllama_f32_logits(const std::string& path, const std::vector<int32_t>& tokens, int threads) {
  ensure_backends_loaded();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  std::unique_ptr<llama_model, decltype(&llama_model_free)> model(llama_model_load_from_file(path.c_str(), mp), &llama_model_free);
  if (!model) throw Error("INVALID_MODEL", "libllama could not load " + path);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(tokens.size() + 256);
  cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(tokens.size());
  cp.n_threads = cp.n_threads_batch = threads;
  cp.type_k = cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  std::unique_ptr<llama_context, decltype(&llama_free)> ctx(llama_init_from_model(model.get(), cp), &llama_free);
  if (!ctx) throw Error("NATIVE", "libllama could not create a context");
  llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.token[i] = tokens[i];
    batch.pos[i] = static_cast<llama_pos>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = static_cast<int32_t>(tokens.size());
  const int status = llama_decode(ctx.get(), batch);
  llama_batch_free(batch);
  if (status != 0) throw Error("NATIVE", "llama_decode failed (" + std::to_string(status) + ")");
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model.get()));
  std::vector<float> out;
  out.reserve(tokens.size() * n_vocab);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* row = llama_get_logits_ith(ctx.get(), static_cast<int32_t>(i));
    out.insert(out.end(), row, row + n_vocab);
  }
  return out;
}

}  // namespace vl::train
