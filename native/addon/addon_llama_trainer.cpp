// AddonLlamaTrainer: pretraining a LLaMA with every weight trainable (native/core/train/llama_trainer.h),
// for src/bindings/llama-trainer.ts. Every slow call runs on a worker thread; a training call
// stops between optimizer steps (or inside a step's forward/backward, leaving the weights as they
// were) when its AbortFlag is set.
#include <memory>
#include <string>
#include <vector>

#include "addon/exports.h"
#include "addon/promise_worker.h"
#include "addon/train_arrays.h"
#include "core/train/llama_trainer.h"

namespace vl::addon {
namespace {

using vl::train::LlamaTrainer;
using vl::train::TokenWindows;
using Slot = std::shared_ptr<std::shared_ptr<LlamaTrainer>>;

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, Slot slot, std::string path) : PromiseWorker(env), slot_(std::move(slot)), path_(std::move(path)) {}

 protected:
  void Run() override { loaded_ = std::make_shared<LlamaTrainer>(path_); }
  Napi::Value Result(Napi::Env env) override {
    *slot_ = loaded_;
    Napi::Object info = Napi::Object::New(env);
    info.Set("vocabularySize", Napi::Number::New(env, static_cast<double>(loaded_->hparams().n_vocab)));
    info.Set("contextLength", Napi::Number::New(env, static_cast<double>(loaded_->hparams().n_ctx_train)));
    info.Set("steps", Napi::Number::New(env, static_cast<double>(loaded_->steps())));
    Napi::Array names = Napi::Array::New(env, loaded_->params().size());
    for (size_t i = 0; i < loaded_->params().size(); ++i) names.Set(static_cast<uint32_t>(i), loaded_->params()[i]->name);
    info.Set("tensors", names);
    return info;
  }

 private:
  Slot slot_;
  std::string path_;
  std::shared_ptr<LlamaTrainer> loaded_;
};

// The loss of one optimizer step, reported as it ends.
struct StepLoss {
  uint32_t step;
  double loss;
};

class TrainWorker : public ProgressPromiseWorker<StepLoss> {
 public:
  TrainWorker(Napi::Env env, std::shared_ptr<LlamaTrainer> trainer, TokenWindows windows, int64_t per_step, std::vector<float> rates,
              vl::train::AdamWStep adamw, int threads, JobOptions job)
      : ProgressPromiseWorker(env), trainer_(std::move(trainer)), windows_(std::move(windows)), per_step_(per_step),
        rates_(std::move(rates)), adamw_(adamw), threads_(threads), abort_(std::move(job.abort)) {
    if (!job.on_progress.IsEmpty()) on_progress_ = Napi::Persistent(job.on_progress);
  }

 protected:
  void Run(const Progress& progress) override {
    const size_t stride = static_cast<size_t>(per_step_ * (windows_.length + 1));
    for (uint32_t i = 0; i < rates_.size(); ++i) {
      if (is_aborted(abort_.get())) throw Error("ABORTED", "pretraining was aborted after " + std::to_string(i) + " steps of this call");
      const TokenWindows step{std::vector<int32_t>(windows_.tokens.begin() + i * stride, windows_.tokens.begin() + (i + 1) * stride),
                              windows_.length};
      vl::train::AdamWStep hp = adamw_;
      hp.lr = rates_[i];
      const double loss = trainer_->step(step, hp, threads_, abort_.get());
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
  std::shared_ptr<LlamaTrainer> trainer_;
  TokenWindows windows_;
  int64_t per_step_;
  std::vector<float> rates_;
  vl::train::AdamWStep adamw_;
  int threads_;
  std::shared_ptr<vl::AbortFlag> abort_;
  Napi::FunctionReference on_progress_;
  std::vector<double> losses_;
};

// Runs `work` on the trainer on a worker thread; `result` builds the promise's value.
class TrainerJob : public PromiseWorker {
 public:
  using Work = std::function<void(LlamaTrainer&)>;
  using Convert = std::function<Napi::Value(Napi::Env)>;
  TrainerJob(Napi::Env env, std::shared_ptr<LlamaTrainer> trainer, Work work, Convert result)
      : PromiseWorker(env), trainer_(std::move(trainer)), work_(std::move(work)), result_(std::move(result)) {}

 protected:
  void Run() override { work_(*trainer_); }
  Napi::Value Result(Napi::Env env) override { return result_ ? result_(env) : env.Undefined(); }

 private:
  std::shared_ptr<LlamaTrainer> trainer_;
  Work work_;
  Convert result_;
};

std::string string_arg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::String>().Utf8Value(); }
int int_arg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

TokenWindows windows_arg(const Napi::CallbackInfo& info, size_t i) {
  return {to_vector<int32_t, Napi::Int32Array>(info[i], "tokens"), info[i + 1].As<Napi::Number>().Int64Value()};
}

class AddonLlamaTrainer : public Napi::ObjectWrap<AddonLlamaTrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonLlamaTrainer",
                       {InstanceMethod<&AddonLlamaTrainer::Load>("load"), InstanceMethod<&AddonLlamaTrainer::Train>("train"),
                        InstanceMethod<&AddonLlamaTrainer::CheckGradients>("checkGradients"),
                        InstanceMethod<&AddonLlamaTrainer::SaveModel>("saveModel"),
                        InstanceMethod<&AddonLlamaTrainer::SaveCheckpoint>("saveCheckpoint"),
                        InstanceMethod<&AddonLlamaTrainer::Dispose>("dispose")});
  }
  explicit AddonLlamaTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonLlamaTrainer>(info) {}

 private:
  // load(path): Promise<{ vocabularySize, contextLength, steps, tensors }>; a checkpoint resumes its moments and step count.
  Napi::Value Load(const Napi::CallbackInfo& info) { return queue_worker(new LoadWorker(info.Env(), slot_, string_arg(info, 0))); }
  // train(tokens, windowLength, windowsPerStep, rates, adamw: { beta1, beta2, eps, weightDecay }, threads, job): Promise<Float64Array>
  Napi::Value Train(const Napi::CallbackInfo& info) {
    auto trainer = loaded(info.Env());
    TokenWindows windows = windows_arg(info, 0);
    const int64_t per_step = info[2].As<Napi::Number>().Int64Value();
    std::vector<float> rates = to_vector<float, Napi::Float32Array>(info[3], "rates");
    if (windows.length < 1 || per_step < 1 ||
        windows.tokens.size() != rates.size() * static_cast<size_t>(per_step * (windows.length + 1))) {
      throw coded_error(info.Env(), "INVALID_ARGUMENT", "train() needs windowsPerStep windows of windowLength + 1 tokens per learning rate");
    }
    Napi::Object a = info[4].As<Napi::Object>();
    auto f = [&](const char* key) { return a.Get(key).As<Napi::Number>().FloatValue(); };
    const vl::train::AdamWStep adamw{0.0f, f("beta1"), f("beta2"), f("eps"), f("weightDecay")};
    return queue_worker(new TrainWorker(info.Env(), trainer, std::move(windows), per_step, std::move(rates), adamw, int_arg(info, 5),
                                        JobOptions::From(info[6])));
  }
  // checkGradients(tokens, windowLength, step, threads): Promise<GradientCheckReport>
  Napi::Value CheckGradients(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<vl::train::GradientCheckReport>();
    auto work = [windows = windows_arg(info, 0), step = info[2].As<Napi::Number>().FloatValue(), threads = int_arg(info, 3),
                 out](LlamaTrainer& t) { *out = vl::train::check_llama_gradients(t, windows, step, threads); };
    return job(info, work, [out](Napi::Env env) { return to_object(env, *out); });
  }
  // saveModel(path): Promise<void>, the LLaMA GGUF libllama loads
  Napi::Value SaveModel(const Napi::CallbackInfo& info) {
    return job(info, [path = string_arg(info, 0)](LlamaTrainer& t) { t.save_model(path); }, nullptr);
  }
  // saveCheckpoint(path): Promise<void>, the model with its AdamW moments and step count
  Napi::Value SaveCheckpoint(const Napi::CallbackInfo& info) {
    return job(info, [path = string_arg(info, 0)](LlamaTrainer& t) { t.save_checkpoint(path); }, nullptr);
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    slot_->reset();
    return info.Env().Undefined();
  }

  Napi::Value job(const Napi::CallbackInfo& info, TrainerJob::Work work, TrainerJob::Convert result) {
    return queue_worker(new TrainerJob(info.Env(), loaded(info.Env()), std::move(work), std::move(result)));
  }
  std::shared_ptr<LlamaTrainer> loaded(Napi::Env env) const {
    if (!*slot_) throw coded_error(env, "DISPOSED", "The LLaMA trainer is not loaded (or was disposed)");
    return *slot_;
  }

  // Filled by the load worker on the JS thread; workers hold their own reference while they run.
  Slot slot_ = std::make_shared<std::shared_ptr<LlamaTrainer>>();
};

}  // namespace

void export_llama_trainer(Napi::Env env, Napi::Object exports) { exports.Set("AddonLlamaTrainer", AddonLlamaTrainer::Define(env)); }

}  // namespace vl::addon
