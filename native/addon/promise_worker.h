#pragma once
// The addon's one worker framework: workers that settle a Promise. vl::Error's code becomes the
// rejection's `code` (src/bindings/errors.ts turns it into a VideoLlamaError), any other exception
// is NATIVE. Every slow job takes its options as { abort?: AbortFlag, onProgress?: function }.
#include <napi.h>

#include <exception>
#include <memory>
#include <string>

#include "addon/abort_flag.h"
#include "core/error.h"

namespace vl::addon {

// A JS Error with a `code` property.
inline Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// Runs a synchronous native call on the JS thread, throwing vl::Error as a coded JS error.
template <class Call>
auto with_js_errors(Napi::Env env, Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const vl::Error& e) {
    throw coded_error(env, e.code(), e.what());
  }
}

// The { abort?, onProgress? } options of a slow job.
struct JobOptions {
  std::shared_ptr<vl::AbortFlag> abort;  // null: the job cannot be cancelled
  Napi::Function on_progress;            // empty: no progress reports

  static JobOptions From(Napi::Value value) {
    JobOptions options;
    if (!value.IsObject()) return options;
    Napi::Object object = value.As<Napi::Object>();
    options.abort = AbortFlag::From(object.Get("abort"));
    Napi::Value on_progress = object.Get("onProgress");
    if (on_progress.IsFunction()) options.on_progress = on_progress.As<Napi::Function>();
    return options;
  }
};

// Queues `worker` and returns its promise.
template <class Worker>
Napi::Promise queue_worker(Worker* worker) {
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
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
  // Called on the JS thread once the work is over, whatever its outcome, before the promise settles.
  virtual void Finish() {}

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
    Finish();
    deferred_.Resolve(Result(this->Env()));
  }
  void OnError(const Napi::Error& error) final {
    Napi::HandleScope scope(this->Env());
    Finish();
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
