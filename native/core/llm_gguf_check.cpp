#include "core/llm_gguf_check.h"

#include <cmath>
#include <memory>

#include "core/error.h"
#include "core/gguf_names.h"
#include "core/llm_log.h"
#include "gguf.h"

namespace vl::llm {

namespace {

struct GgufDeleter {
  void operator()(gguf_context* ctx) const { gguf_free(ctx); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;

std::string gguf_string(const gguf_context* ctx, const char* key) {
  const int64_t id = gguf_find_key(ctx, key);
  if (id < 0 || gguf_get_kv_type(ctx, id) != GGUF_TYPE_STRING) return "";
  return gguf_get_val_str(ctx, id);
}

// Rejects files libllama would misread or that are plainly another kind of GGUF, with a
// message that says what the file is.
void check_is_llm(const gguf_context* ctx, const std::string& arch, const std::string& path) {
  if (arch == PROJECTOR_ARCHITECTURE) {
    throw Error("INVALID_MODEL", path + " is a Video-LLaMA projector GGUF (" + KEY_ARCHITECTURE + " = " + arch +
                                     "), not a language model; pass it as the projector");
  }
  if (arch.empty()) throw Error("INVALID_MODEL", path + " has no " + KEY_ARCHITECTURE + ": not a model GGUF");
  if (gguf_find_tensor(ctx, LLM_TOKEN_EMBD) < 0) {
    throw Error("INVALID_MODEL", path + " (" + KEY_ARCHITECTURE + " = " + arch + ") has no " + LLM_TOKEN_EMBD +
                                     " tensor: not a LLaMA-family language model");
  }
}

// libllama GGML_ASSERTs on some out-of-range hyper-parameters instead of failing the load: a
// block count outside 1..LLAMA_MAX_LAYERS (512 in llama-hparams.h) at load, a negative or NaN
// norm epsilon at the first decode. (The keys are libllama's "<arch>.*" names.)
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
  const int64_t id = gguf_find_tensor(ctx, LLM_TOKEN_EMBD);
  const int64_t* ne = gguf_get_tensor_ne(ctx, id);
  TensorLocation loc;
  loc.offset = gguf_get_data_offset(ctx) + gguf_get_tensor_offset(ctx, id);
  loc.type = gguf_get_tensor_type(ctx, id);
  loc.row_length = ne[0];
  loc.rows = ne[1];
  return loc;
}

}  // namespace

LlmFileFacts check_llm_file(const std::string& path) {
  const uint64_t mark = log_mark();
  GgufPtr meta(gguf_init_from_file(path.c_str(), {/*no_alloc =*/true, /*ctx =*/nullptr}));
  if (!meta) throw Error("INVALID_MODEL", with_log(path + " is not a readable GGUF file (truncated or corrupt)", mark));
  const std::string arch = gguf_string(meta.get(), KEY_ARCHITECTURE);
  check_is_llm(meta.get(), arch, path);
  check_hparams(meta.get(), arch, path);
  return {arch, locate_token_embd(meta.get())};
}

}  // namespace vl::llm
