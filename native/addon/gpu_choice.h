#pragma once
// The `gpu` option of the native load calls, as src/backends.ts resolves it:
// { candidates: [{ backend: 'Vulkan', libraries: ['/…/libggml-vulkan.so'] }], required: boolean }.
#include <napi.h>

#include "core/backend.h"

namespace vl::addon {

// Anything else than that object (e.g. undefined) means the CPU only.
inline GpuChoice gpu_choice_from(Napi::Value value) {
  GpuChoice choice;
  if (!value.IsObject()) return choice;
  Napi::Object object = value.As<Napi::Object>();
  choice.required = object.Get("required").ToBoolean();
  Napi::Value candidates = object.Get("candidates");
  if (!candidates.IsArray()) return choice;
  Napi::Array list = candidates.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Object entry = list.Get(i).As<Napi::Object>();
    GpuCandidate candidate{entry.Get("backend").ToString(), {}};
    Napi::Array libraries = entry.Get("libraries").As<Napi::Array>();
    for (uint32_t j = 0; j < libraries.Length(); ++j) candidate.libraries.push_back(libraries.Get(j).ToString());
    choice.candidates.push_back(std::move(candidate));
  }
  return choice;
}

}  // namespace vl::addon
