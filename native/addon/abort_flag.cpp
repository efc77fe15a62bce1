#include "addon/abort_flag.h"

#include "addon/exports.h"

namespace vl::addon {

Napi::FunctionReference AbortFlag::constructor_;

Napi::Function AbortFlag::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "AbortFlag", {InstanceMethod<&AbortFlag::Abort>("abort")});
  constructor_ = Napi::Persistent(ctor);
  constructor_.SuppressDestruct();
  return ctor;
}

AbortFlag::AbortFlag(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AbortFlag>(info) {}

void AbortFlag::Abort(const Napi::CallbackInfo&) { flag_->store(true); }

std::shared_ptr<vl::AbortFlag> AbortFlag::From(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(constructor_.Value())) {
    throw Napi::TypeError::New(value.Env(), "expected an AbortFlag");
  }
  return Unwrap(value.As<Napi::Object>())->flag_;
}

void export_abort_flag(Napi::Env env, Napi::Object exports) { exports.Set("AbortFlag", AbortFlag::Define(env)); }

}  // namespace vl::addon
