// The addon's exports, all of them here (src/bindings/ declares their TypeScript types).
#include <napi.h>

#include "addon/exports.h"
#include "core/backend.h"
#include "core/llm_log.h"

namespace vl::addon {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // libllama and ggml log to stderr until told otherwise; capture before the backends load (which logs).
  vl::llm::capture_logs();
  ensure_backends_loaded();
  export_abort_flag(env, exports);
  export_model(env, exports);
  export_context(env, exports);
  export_projector(env, exports);
  export_gguf_names(env, exports);
  export_quantize(env, exports);
  export_train(env, exports);
  export_train_branch(env, exports);
  export_llama_trainer(env, exports);
  exports.Set("devices", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), describe_devices());
  }));
  return exports;
}

NODE_API_MODULE(video_llama, Init)

}  // namespace vl::addon
