#pragma once
// AbortFlag: a JS handle on a vl::AbortFlag that a native job polls. src/bindings/abort.ts makes
// one per job and calls abort() from the job's AbortSignal; the job's worker keeps the shared
// flag alive until it finishes.
#include <napi.h>

#include <memory>

#include "core/error.h"

namespace vl::addon {

class AbortFlag : public Napi::ObjectWrap<AbortFlag> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AbortFlag(const Napi::CallbackInfo& info);

  // The flag of a JS AbortFlag, or null when `value` is undefined. Throws a TypeError otherwise.
  static std::shared_ptr<vl::AbortFlag> From(Napi::Value value);

 private:
  void Abort(const Napi::CallbackInfo& info);

  std::shared_ptr<vl::AbortFlag> flag_ = std::make_shared<vl::AbortFlag>(false);
  static Napi::FunctionReference constructor_;
};

}  // namespace vl::addon
