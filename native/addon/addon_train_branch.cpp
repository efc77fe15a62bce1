// AddonBranchTrainer: one branch's trainer (native/core/train/branch_trainer.h) for src/bindings/train.ts.
// Every method runs on a worker thread; a trainer's jobs run one at a time (its mutex).
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon/exports.h"
#include "addon/promise_worker.h"
#include "addon/train_arrays.h"
#include "core/train/branch_trainer.h"
#include "core/train/gradient_check.h"

namespace vl::addon {
namespace {

using vl::train::BranchExample;
using vl::train::BranchTrainer;

// A trainer (once loaded) and the lock its jobs take.
struct TrainerSlot {
  std::mutex busy;
  std::unique_ptr<BranchTrainer> trainer;
};

// Runs `work` under the slot's lock on a worker thread; `result` builds the promise's value.
class TrainerJob : public PromiseWorker {
 public:
  using Work = std::function<void(BranchTrainer&)>;
  using Convert = std::function<Napi::Value(Napi::Env)>;
  TrainerJob(Napi::Env env, std::shared_ptr<TrainerSlot> slot, Work work, Convert result)
      : PromiseWorker(env), slot_(std::move(slot)), work_(std::move(work)), result_(std::move(result)) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lock(slot_->busy);
    if (!slot_->trainer) throw Error("DISPOSED", "The trainer is not loaded (or was disposed)");
    work_(*slot_->trainer);
  }
  Napi::Value Result(Napi::Env env) override { return result_ ? result_(env) : env.Undefined(); }

 private:
  std::shared_ptr<TrainerSlot> slot_;
  Work work_;
  Convert result_;
};

class DisposeJob : public PromiseWorker {
 public:
  DisposeJob(Napi::Env env, std::shared_ptr<TrainerSlot> slot) : PromiseWorker(env), slot_(std::move(slot)) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lock(slot_->busy);
    slot_->trainer.reset();
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::shared_ptr<TrainerSlot> slot_;
};

class LoadJob : public PromiseWorker {
 public:
  LoadJob(Napi::Env env, std::shared_ptr<TrainerSlot> slot, std::string llm, std::string projector, vl::train::Branch branch,
          vl::train::Unfreeze unfreeze)
      : PromiseWorker(env), slot_(std::move(slot)), llm_(std::move(llm)), projector_(std::move(projector)), branch_(branch),
        unfreeze_(unfreeze) {}

 protected:
  void Run() override {
    auto llm = std::make_shared<vl::train::FrozenLlama>(llm_);
    auto trainer = std::make_unique<BranchTrainer>(llm, projector_, branch_, unfreeze_);
    std::lock_guard<std::mutex> lock(slot_->busy);
    slot_->trainer = std::move(trainer);
  }
  Napi::Value Result(Napi::Env env) override {
    const BranchTrainer& t = *slot_->trainer;
    Napi::Object info = Napi::Object::New(env);
    info.Set("queries", Napi::Number::New(env, static_cast<double>(t.shape().queries)));
    info.Set("unitRows", Napi::Number::New(env, static_cast<double>(t.shape().unit_rows)));
    info.Set("featureWidth", Napi::Number::New(env, static_cast<double>(t.shape().feature_width)));
    info.Set("maxUnits", Napi::Number::New(env, static_cast<double>(t.shape().max_units)));
    info.Set("media", Napi::Boolean::New(env, t.shape().media));
    Napi::Array names = Napi::Array::New(env, t.params().size());
    for (size_t i = 0; i < t.params().size(); ++i) names.Set(static_cast<uint32_t>(i), t.params()[i]->name);
    info.Set("tensors", names);
    return info;
  }

 private:
  std::shared_ptr<TrainerSlot> slot_;
  std::string llm_, projector_;
  vl::train::Branch branch_;
  vl::train::Unfreeze unfreeze_;
};

std::vector<BranchExample> to_batch(Napi::Value value) {
  if (!value.IsArray()) throw Napi::TypeError::New(value.Env(), "the batch must be an array of examples");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<BranchExample> batch;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Object o = array.Get(i).As<Napi::Object>();
    BranchExample e;
    e.features = to_vector<float, Napi::Float32Array>(o.Get("features"), "features");
    e.units = o.Get("units").As<Napi::Number>().Int64Value();
    e.tokens = to_vector<int32_t, Napi::Int32Array>(o.Get("tokens"), "tokens");
    e.media_offset = o.Get("mediaOffset").As<Napi::Number>().Int64Value();
    e.labels = to_vector<int32_t, Napi::Int32Array>(o.Get("labels"), "labels");
    batch.push_back(std::move(e));
  }
  return batch;
}

vl::train::AdamWStep to_adamw(Napi::Value value) {
  Napi::Object o = value.As<Napi::Object>();
  auto f = [&](const char* key) { return o.Get(key).As<Napi::Number>().FloatValue(); };
  return {f("lr"), f("beta1"), f("beta2"), f("eps"), f("weightDecay")};
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::String>().Utf8Value(); }
int int_arg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

class AddonBranchTrainer : public Napi::ObjectWrap<AddonBranchTrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonBranchTrainer",
                       {InstanceMethod<&AddonBranchTrainer::Load>("load"), InstanceMethod<&AddonBranchTrainer::Loss>("loss"),
                        InstanceMethod<&AddonBranchTrainer::Step>("step"),
                        InstanceMethod<&AddonBranchTrainer::CheckGradients>("checkGradients"),
                        InstanceMethod<&AddonBranchTrainer::Save>("save"), InstanceMethod<&AddonBranchTrainer::Restore>("restore"),
                        InstanceMethod<&AddonBranchTrainer::Export>("exportProjector"),
                        InstanceMethod<&AddonBranchTrainer::Tensors>("tensors"),
                        InstanceMethod<&AddonBranchTrainer::SoftPrompt>("softPrompt"),
                        InstanceMethod<&AddonBranchTrainer::Dispose>("dispose")});
  }
  explicit AddonBranchTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonBranchTrainer>(info) {}

 private:
  // load(llm, projector, branch: 'video' | 'audio', unfreeze: { encoder, qformer }):
  //   Promise<{ queries, unitRows, featureWidth, maxUnits, media, tensors }>
  Napi::Value Load(const Napi::CallbackInfo& info) {
    const auto branch = string_arg(info, 2) == "audio" ? vl::train::Branch::Audio : vl::train::Branch::Video;
    Napi::Object u = info[3].As<Napi::Object>();
    const vl::train::Unfreeze unfreeze{u.Get("encoder").ToBoolean().Value(), u.Get("qformer").ToBoolean().Value()};
    return queue_worker(new LoadJob(info.Env(), slot_, string_arg(info, 0), string_arg(info, 1), branch, unfreeze));
  }
  // loss(batch, threads, options: { abort? }): Promise<number>
  Napi::Value Loss(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<float>();
    auto work = [batch = to_batch(info[0]), threads = int_arg(info, 1), abort = JobOptions::From(info[2]).abort,
                 out](BranchTrainer& t) { *out = t.loss(batch, threads, abort.get()); };
    return job(info.Env(), work, [out](Napi::Env env) { return Napi::Number::New(env, *out); });
  }
  // step(batch, adamw: { lr, beta1, beta2, eps, weightDecay }, dropout: { p, seed }, threads, options: { abort? }): Promise<number>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<float>();
    Napi::Object d = info[2].As<Napi::Object>();
    const vl::train::StepDropout dropout{d.Get("p").As<Napi::Number>().FloatValue(), d.Get("seed").As<Napi::Number>().Uint32Value()};
    auto work = [batch = to_batch(info[0]), hp = to_adamw(info[1]), dropout, threads = int_arg(info, 3),
                 abort = JobOptions::From(info[4]).abort, out](BranchTrainer& t) { *out = t.step(batch, hp, dropout, threads, abort.get()); };
    return job(info.Env(), work, [out](Napi::Env env) { return Napi::Number::New(env, *out); });
  }
  // checkGradients(batch, step, threads): Promise<GradientCheckReport>
  Napi::Value CheckGradients(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<vl::train::GradientCheckReport>();
    auto work = [batch = to_batch(info[0]), step = info[1].As<Napi::Number>().FloatValue(), threads = int_arg(info, 2),
                 out](BranchTrainer& t) { *out = vl::train::check_branch_gradients(t, batch, step, threads); };
    return job(info.Env(), work, [out](Napi::Env env) { return to_object(env, *out); });
  }
  // save(path, state: string): Promise<void>
  Napi::Value Save(const Napi::CallbackInfo& info) {
    auto work = [path = string_arg(info, 0), state = string_arg(info, 1)](BranchTrainer& t) { t.save_checkpoint(path, state); };
    return job(info.Env(), work, nullptr);
  }
  // restore(path): Promise<{ state: string, steps: number }>
  Napi::Value Restore(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<std::pair<std::string, int64_t>>();
    auto work = [path = string_arg(info, 0), out](BranchTrainer& t) { *out = {t.restore_checkpoint(path), t.steps()}; };
    return job(info.Env(), work, [out](Napi::Env env) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("state", out->first);
      o.Set("steps", Napi::Number::New(env, static_cast<double>(out->second)));
      return o;
    });
  }
  // exportProjector(source, out): Promise<void>
  Napi::Value Export(const Napi::CallbackInfo& info) {
    auto work = [source = string_arg(info, 0), out = string_arg(info, 1)](BranchTrainer& t) { t.export_projector(source, out); };
    return job(info.Env(), work, nullptr);
  }
  // softPrompt(example, threads): Promise<Float32Array>, [queries][embeddingWidth]
  Napi::Value SoftPrompt(const Napi::CallbackInfo& info) {
    Napi::Array one = Napi::Array::New(info.Env(), 1);
    one.Set(0u, info[0]);
    auto out = std::make_shared<std::vector<float>>();
    auto work = [example = to_batch(one).front(), threads = int_arg(info, 1), out](BranchTrainer& t) {
      *out = t.soft_prompt(example, threads);
    };
    return job(info.Env(), work, [out](Napi::Env env) { return to_array(env, *out); });
  }
  // tensors(): Promise<{ name, values }[]>: the trainable tensors (f32 copies), then every AdamW moment.
  Napi::Value Tensors(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<std::vector<std::pair<std::string, std::vector<float>>>>();
    auto work = [out](BranchTrainer& t) { *out = t.snapshot(); };
    return job(info.Env(), work, [out](Napi::Env env) {
      Napi::Array array = Napi::Array::New(env, out->size());
      for (size_t i = 0; i < out->size(); ++i) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", (*out)[i].first);
        o.Set("values", to_array(env, (*out)[i].second));
        array.Set(static_cast<uint32_t>(i), o);
      }
      return array;
    });
  }
  // dispose(): Promise<void>; frees the trainer once the running job (if any) is over.
  Napi::Value Dispose(const Napi::CallbackInfo& info) { return queue_worker(new DisposeJob(info.Env(), slot_)); }

  Napi::Value job(Napi::Env env, TrainerJob::Work work, TrainerJob::Convert result) {
    return queue_worker(new TrainerJob(env, slot_, std::move(work), std::move(result)));
  }

  std::shared_ptr<TrainerSlot> slot_ = std::make_shared<TrainerSlot>();
};

}  // namespace

void export_train_branch(Napi::Env env, Napi::Object exports) {
  exports.Set("AddonBranchTrainer", AddonBranchTrainer::Define(env));
}

}  // namespace vl::addon
