#pragma once
// AbortFlag: a JS handle on an atomic flag that native work polls. The TypeScript side calls
// abort() from an AbortSignal's 'abort' event; workers keep the shared flag alive.
#include <napi.h>

#include <atomic>
#include <memory>

namespace vl::addon {

class AbortFlag : public Napi::ObjectWrap<AbortFlag> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AbortFlag(const Napi::CallbackInfo& info);

  // The flag of a JS AbortFlag, or null when `value` is undefined. Throws a TypeError otherwise.
  static std::shared_ptr<std::atomic<bool>> From(Napi::Value value);

 private:
  void Abort(const Napi::CallbackInfo& info);

  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
  static Napi::FunctionReference constructor_;
};

}  // namespace vl::addon
