// AddonLlmPretrainer: libllama's trainer on a LLaMA GGUF (native/core/llm_pretrain.h), for
// src/bindings/llm-pretrain.ts. Every slow call runs on a worker thread; a training call stops
// between optimizer steps when its AbortFlag is set.
#include <memory>
#include <string>
#include <vector>

#include "addon/exports.h"
#include "addon/promise_worker.h"
#include "core/llm_pretrain.h"

namespace vl::addon {
namespace {

using vl::llm::Pretrainer;
using Slot = std::shared_ptr<std::shared_ptr<Pretrainer>>;

class OpenWorker : public PromiseWorker {
 public:
  OpenWorker(Napi::Env env, Slot slot, vl::llm::PretrainSetup setup) : PromiseWorker(env), slot_(std::move(slot)), setup_(std::move(setup)) {}

 protected:
  void Run() override { opened_ = std::make_shared<Pretrainer>(setup_); }
  Napi::Value Result(Napi::Env env) override {
    *slot_ = opened_;
    Napi::Object info = Napi::Object::New(env);
    info.Set("vocabularySize", Napi::Number::New(env, opened_->model().n_vocab()));
    info.Set("window", Napi::Number::New(env, opened_->window()));
    return info;
  }

 private:
  Slot slot_;
  vl::llm::PretrainSetup setup_;
  std::shared_ptr<Pretrainer> opened_;
};

// The loss of one optimizer step, reported as it ends.
struct StepLoss {
  uint32_t step;
  double loss;
};

class TrainWorker : public ProgressPromiseWorker<StepLoss> {
 public:
  TrainWorker(Napi::Env env, std::shared_ptr<Pretrainer> trainer, std::vector<int32_t> tokens, std::vector<float> rates, JobOptions job)
      : ProgressPromiseWorker(env), trainer_(std::move(trainer)), tokens_(std::move(tokens)), rates_(std::move(rates)), abort_(std::move(job.abort)) {
    if (!job.on_progress.IsEmpty()) on_progress_ = Napi::Persistent(job.on_progress);
  }

 protected:
  void Run(const Progress& progress) override {
    const size_t stride = trainer_->window() + 1;
    for (uint32_t i = 0; i < rates_.size(); ++i) {
      if (is_aborted(abort_.get())) throw Error("ABORTED", "pretraining was aborted after " + std::to_string(i) + " steps of this call");
      const double loss = trainer_->step(tokens_.data() + i * stride, rates_[i]);
      losses_.push_back(loss);
      const StepLoss report{i, loss};
      progress.Send(&report, 1);
    }
  }
  void OnProgress(const StepLoss* data, size_t count) override {
    if (on_progress_.IsEmpty()) return;
    Napi::HandleScope scope(Env());
    for (size_t i = 0; i < count; ++i) on_progress_.Call({Napi::Number::New(Env(), data[i].step), Napi::Number::New(Env(), data[i].loss)});
  }
  Napi::Value Result(Napi::Env env) override {
    auto out = Napi::Float64Array::New(env, losses_.size());
    std::copy(losses_.begin(), losses_.end(), out.Data());
    return out;
  }

 private:
  std::shared_ptr<Pretrainer> trainer_;
  std::vector<int32_t> tokens_;
  std::vector<float> rates_;
  std::shared_ptr<vl::AbortFlag> abort_;
  Napi::FunctionReference on_progress_;
  std::vector<double> losses_;
};

class SaveWorker : public PromiseWorker {
 public:
  SaveWorker(Napi::Env env, std::shared_ptr<Pretrainer> trainer, std::string path)
      : PromiseWorker(env), trainer_(std::move(trainer)), path_(std::move(path)) {}

 protected:
  void Run() override { trainer_->save(path_); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::shared_ptr<Pretrainer> trainer_;
  std::string path_;
};

float number_or(Napi::Object o, const char* key, float fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().FloatValue() : fallback;
}

class AddonLlmPretrainer : public Napi::ObjectWrap<AddonLlmPretrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonLlmPretrainer",
                       {InstanceMethod<&AddonLlmPretrainer::Open>("open"), InstanceMethod<&AddonLlmPretrainer::Tokenize>("tokenize"),
                        InstanceMethod<&AddonLlmPretrainer::Train>("train"), InstanceMethod<&AddonLlmPretrainer::Save>("save"),
                        InstanceMethod<&AddonLlmPretrainer::Dispose>("dispose")});
  }
  explicit AddonLlmPretrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonLlmPretrainer>(info) {}

 private:
  // open({ path, window, ubatch, threads, beta1, beta2, eps, weightDecay }): Promise<{ vocabularySize, window }>
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    vl::llm::PretrainSetup setup;
    setup.path = o.Get("path").As<Napi::String>().Utf8Value();
    setup.window = o.Get("window").As<Napi::Number>().Uint32Value();
    setup.ubatch = o.Get("ubatch").As<Napi::Number>().Uint32Value();
    setup.threads = o.Get("threads").As<Napi::Number>().Int32Value();
    setup.beta1 = number_or(o, "beta1", setup.beta1);
    setup.beta2 = number_or(o, "beta2", setup.beta2);
    setup.eps = number_or(o, "eps", setup.eps);
    setup.weight_decay = number_or(o, "weightDecay", setup.weight_decay);
    return queue_worker(new OpenWorker(info.Env(), slot_, std::move(setup)));
  }
  // tokenize(text, addBos): Int32Array, control tokens such as "</s>" read as themselves
  Napi::Value Tokenize(const Napi::CallbackInfo& info) {
    const auto tokens = opened(info.Env())->model().tokenize(info[0].As<Napi::String>().Utf8Value(), info[1].ToBoolean().Value(), true);
    auto out = Napi::Int32Array::New(info.Env(), tokens.size());
    std::copy(tokens.begin(), tokens.end(), out.Data());
    return out;
  }
  // train(tokens: Int32Array (steps × (window + 1)), rates: Float32Array (steps), job): Promise<Float64Array> (the losses)
  Napi::Value Train(const Napi::CallbackInfo& info) {
    auto trainer = opened(info.Env());
    Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    Napi::Float32Array rates = info[1].As<Napi::Float32Array>();
    if (tokens.ElementLength() != rates.ElementLength() * (trainer->window() + 1)) {
      throw coded_error(info.Env(), "INVALID_ARGUMENT", "train() needs window + 1 tokens per learning rate");
    }
    return queue_worker(new TrainWorker(info.Env(), trainer, std::vector<int32_t>(tokens.Data(), tokens.Data() + tokens.ElementLength()),
                                        std::vector<float>(rates.Data(), rates.Data() + rates.ElementLength()), JobOptions::From(info[2])));
  }
  // save(path): Promise<void>
  Napi::Value Save(const Napi::CallbackInfo& info) {
    return queue_worker(new SaveWorker(info.Env(), opened(info.Env()), info[0].As<Napi::String>().Utf8Value()));
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    slot_->reset();
    return info.Env().Undefined();
  }
  std::shared_ptr<Pretrainer> opened(Napi::Env env) const {
    if (!*slot_) throw coded_error(env, "DISPOSED", "The pretrainer is not open (or was disposed)");
    return *slot_;
  }

  // Filled by the open worker on the JS thread; workers hold their own reference while they run.
  Slot slot_ = std::make_shared<std::shared_ptr<Pretrainer>>();
};

}  // namespace

void export_llm_pretrain(Napi::Env env, Napi::Object exports) { exports.Set("AddonLlmPretrainer", AddonLlmPretrainer::Define(env)); }

}  // namespace vl::addon
