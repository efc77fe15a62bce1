// AddonTrainLlama: the frozen LLaMA training graph (native/core/train) for src/bindings/train.ts.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "addon/exports.h"
#include "addon/promise_worker.h"
#include "addon/train_arrays.h"
#include "core/train/gradient_check.h"
#include "core/train/llama_loss.h"
#include "core/train/llama_reference.h"

namespace vl::addon {
namespace {

using vl::train::FrozenLlama;

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::shared_ptr<std::shared_ptr<FrozenLlama>> slot, std::string path)
      : PromiseWorker(env), slot_(std::move(slot)), path_(std::move(path)) {}

 protected:
  void Run() override { loaded_ = std::make_shared<FrozenLlama>(path_); }
  Napi::Value Result(Napi::Env env) override {
    *slot_ = loaded_;
    Napi::Object info = Napi::Object::New(env);
    const auto& hp = loaded_->hparams();
    info.Set("embeddingWidth", Napi::Number::New(env, static_cast<double>(hp.n_embd)));
    info.Set("vocabularySize", Napi::Number::New(env, static_cast<double>(hp.n_vocab)));
    return info;
  }

 private:
  std::shared_ptr<std::shared_ptr<FrozenLlama>> slot_;
  std::string path_;
  std::shared_ptr<FrozenLlama> loaded_;
};

// Any job that returns f32 values (logits), run on a worker thread.
class FloatsWorker : public PromiseWorker {
 public:
  FloatsWorker(Napi::Env env, std::function<std::vector<float>()> job) : PromiseWorker(env), job_(std::move(job)) {}

 protected:
  void Run() override { values_ = job_(); }
  Napi::Value Result(Napi::Env env) override { return to_array(env, values_); }

 private:
  std::function<std::vector<float>()> job_;
  std::vector<float> values_;
};

class LossWorker : public PromiseWorker {
 public:
  LossWorker(Napi::Env env, std::shared_ptr<FrozenLlama> llm, vl::train::ProjectedPrompt example, bool grads,
             int threads, std::shared_ptr<vl::AbortFlag> abort)
      : PromiseWorker(env), llm_(std::move(llm)), example_(std::move(example)), grads_(grads), threads_(threads),
        abort_(std::move(abort)) {}

 protected:
  void Run() override { result_ = vl::train::projected_prompt_loss(*llm_, example_, grads_, threads_, abort_.get()); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", Napi::Number::New(env, result_.loss));
    if (grads_) {
      out.Set("gradWeight", to_array(env, result_.grad_weight));
      out.Set("gradBias", to_array(env, result_.grad_bias));
    }
    return out;
  }

 private:
  std::shared_ptr<FrozenLlama> llm_;
  vl::train::ProjectedPrompt example_;
  bool grads_;
  int threads_;
  std::shared_ptr<vl::AbortFlag> abort_;
  vl::train::LossAndGrads result_;
};

class AddonTrainLlama : public Napi::ObjectWrap<AddonTrainLlama> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonTrainLlama",
                       {InstanceMethod<&AddonTrainLlama::Load>("load"), InstanceMethod<&AddonTrainLlama::Logits>("logits"),
                        InstanceMethod<&AddonTrainLlama::Loss>("loss"), InstanceMethod<&AddonTrainLlama::Dispose>("dispose")});
  }
  explicit AddonTrainLlama(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonTrainLlama>(info) {}

 private:
  // load(path: string): Promise<{ embeddingWidth, vocabularySize }>
  Napi::Value Load(const Napi::CallbackInfo& info) {
    return queue_worker(new LoadWorker(info.Env(), slot_, info[0].As<Napi::String>().Utf8Value()));
  }
  // logits(tokens: Int32Array, threads: number): Promise<Float32Array> ([n_tokens][n_vocab])
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    auto tokens = to_vector<int32_t, Napi::Int32Array>(info[0], "tokens");
    const int threads = info[1].As<Napi::Number>().Int32Value();
    return queue_worker(new FloatsWorker(info.Env(), [llm = loaded(info.Env()), tokens, threads] {
      return vl::train::prompt_logits(*llm, tokens, threads);
    }));
  }
  // loss(example, withGrads: boolean, threads: number, options: { abort? }): Promise<{ loss, gradWeight?, gradBias? }>
  Napi::Value Loss(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    vl::train::ProjectedPrompt e;
    e.media = to_vector<float, Napi::Float32Array>(o.Get("media"), "media");
    e.media_width = o.Get("mediaWidth").As<Napi::Number>().Int64Value();
    e.proj_weight = to_vector<float, Napi::Float32Array>(o.Get("projWeight"), "projWeight");
    e.proj_bias = to_vector<float, Napi::Float32Array>(o.Get("projBias"), "projBias");
    e.tokens = to_vector<int32_t, Napi::Int32Array>(o.Get("tokens"), "tokens");
    e.media_offset = o.Get("mediaOffset").As<Napi::Number>().Int64Value();
    e.labels = to_vector<int32_t, Napi::Int32Array>(o.Get("labels"), "labels");
    return queue_worker(new LossWorker(info.Env(), loaded(info.Env()), std::move(e), info[1].ToBoolean().Value(),
                                       info[2].As<Napi::Number>().Int32Value(), JobOptions::From(info[3]).abort));
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    slot_->reset();
    return info.Env().Undefined();
  }
  std::shared_ptr<FrozenLlama> loaded(Napi::Env env) const {
    if (!*slot_) throw coded_error(env, "DISPOSED", "The training LLM is not loaded (or was disposed)");
    return *slot_;
  }

  // Filled by the load worker on the JS thread; workers hold their own reference while they run.
  std::shared_ptr<std::shared_ptr<FrozenLlama>> slot_ = std::make_shared<std::shared_ptr<FrozenLlama>>();
};

class GradientCheckWorker : public PromiseWorker {
 public:
  GradientCheckWorker(Napi::Env env, std::string graph, uint32_t seed, float step)
      : PromiseWorker(env), graph_(std::move(graph)), seed_(seed), step_(step) {}

 protected:
  void Run() override { report_ = vl::train::check_gradients(graph_, seed_, step_, 1); }
  Napi::Value Result(Napi::Env env) override { return to_object(env, report_); }

 private:
  std::string graph_;
  uint32_t seed_;
  float step_;
  vl::train::GradientCheckReport report_;
};

}  // namespace

void export_train(Napi::Env env, Napi::Object exports) {
  exports.Set("AddonTrainLlama", AddonTrainLlama::Define(env));
  // trainGradientCheck(graph: string, seed: number, step: number): Promise<{ forwardError, tensors }>
  exports.Set("trainGradientCheck", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return queue_worker(new GradientCheckWorker(info.Env(), info[0].As<Napi::String>().Utf8Value(),
                                                info[1].As<Napi::Number>().Uint32Value(), info[2].As<Napi::Number>().FloatValue()));
  }));
  // trainReferenceLogits(path, tokens: Int32Array, threads): Promise<Float32Array>, libllama in f32
  exports.Set("trainReferenceLogits", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    auto tokens = to_vector<int32_t, Napi::Int32Array>(info[1], "tokens");
    const int threads = info[2].As<Napi::Number>().Int32Value();
    return queue_worker(new FloatsWorker(info.Env(), [path, tokens, threads] {
      return vl::train::libllama_f32_logits(path, tokens, threads);
    }));
  }));
}

}  // namespace vl::addon
