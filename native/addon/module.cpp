#include <napi.h>

#include "addon/registry.h"
#include "core/backend.h"

namespace vl::addon {

std::vector<ExportInit>& export_inits() {
  static std::vector<ExportInit> inits;
  return inits;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ensure_backends_loaded();
  for (auto& init : export_inits()) init(env, exports);
  exports.Set("devices", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), describe_devices());
  }));
  return exports;
}

NODE_API_MODULE(video_llama, Init)

}  // namespace vl::addon
