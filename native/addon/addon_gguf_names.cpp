// ggufNames(): { keys: Record<id, template>, tensors: Record<id, template>, projectorArchitecture } — the native table of
// GGUF keys and tensor names (core/gguf_names.h), so that a test can check the converter agrees.
#include <napi.h>

#include "addon/exports.h"
#include "core/gguf_names.h"

namespace vl::addon {

static Napi::Object to_record(Napi::Env env, const GgufNameTable& table) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [id, value] : table) out.Set(id, value);
  return out;
}

void export_gguf_names(Napi::Env env, Napi::Object exports) {
  exports.Set("ggufNames", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("keys", to_record(info.Env(), gguf_key_table()));
    out.Set("tensors", to_record(info.Env(), gguf_tensor_table()));
    out.Set("projectorArchitecture", PROJECTOR_ARCHITECTURE);
    return out;
  }, "ggufNames"));
}

}  // namespace vl::addon
