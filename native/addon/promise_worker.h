#pragma once
// Workers that settle a Promise: vl::Error's code becomes the rejection's `code` (the TypeScript
// side turns it into a VideoLlamaError), any other exception is NATIVE.
#include <napi.h>

#include <exception>
#include <string>

#include "core/error.h"

namespace vl::addon {

// A JS Error with a `code` property.
inline Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// The promise plumbing shared by both worker kinds below.
template <class Base>
class PromiseSettler : public Base {
 public:
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  explicit PromiseSettler(Napi::Env env) : Base(env), deferred_(Napi::Promise::Deferred::New(env)) {}

  // The promise's value, built on the JS thread after the work succeeded.
  virtual Napi::Value Result(Napi::Env env) = 0;

  template <class Work>
  void Guard(Work&& work) {
    try {
      work();
    } catch (const vl::Error& e) {
      code_ = e.code();
      this->SetError(e.what());
    } catch (const std::exception& e) {
      this->SetError(e.what());
    }
  }

 private:
  void OnOK() final {
    Napi::HandleScope scope(this->Env());
    deferred_.Resolve(Result(this->Env()));
  }
  void OnError(const Napi::Error& error) final {
    Napi::HandleScope scope(this->Env());
    deferred_.Reject(coded_error(this->Env(), code_, error.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  std::string code_ = "NATIVE";
};

// Work on a worker thread; throws to reject.
class PromiseWorker : public PromiseSettler<Napi::AsyncWorker> {
 protected:
  using PromiseSettler::PromiseSettler;
  virtual void Run() = 0;

 private:
  void Execute() final { Guard([this] { Run(); }); }
};

// The same, with progress events of type P delivered on the JS thread, all of them before the
// promise settles (node-addon-api completes the work only after the progress queue is drained).
template <class P>
class ProgressPromiseWorker : public PromiseSettler<Napi::AsyncProgressQueueWorker<P>> {
 protected:
  using Progress = typename Napi::AsyncProgressQueueWorker<P>::ExecutionProgress;
  using PromiseSettler<Napi::AsyncProgressQueueWorker<P>>::PromiseSettler;
  virtual void Run(const Progress& progress) = 0;

 private:
  void Execute(const Progress& progress) final {
    this->Guard([this, &progress] { Run(progress); });
  }
};

}  // namespace vl::addon
