#include "addon/addon_model.h"

#include <algorithm>
#include <string>
#include <vector>

#include "addon/exports.h"
#include "addon/gpu_choice.h"
#include "addon/llm_arrays.h"
#include "addon/promise_worker.h"

namespace vl::addon {

class ModelLoadWorker : public ProgressPromiseWorker<float> {
 public:
  ModelLoadWorker(Napi::Env env, AddonModel* owner, JobOptions options)
      : ProgressPromiseWorker(env), owner_(owner), self_(Napi::Persistent(owner->Value())), params_(owner->params_),
        abort_(std::move(options.abort)) {
    if (!options.on_progress.IsEmpty()) on_progress_ = Napi::Persistent(options.on_progress);
    params_.abort = abort_.get();
  }

 protected:
  void Run(const Progress& progress) override {
    float last_sent = -1.0f;
    if (!on_progress_.IsEmpty()) {
      params_.on_progress = [&](float p) {
        // libllama reports per tensor; a hundredth is plenty for a progress bar.
        if (p - last_sent >= 0.01f || p >= 1.0f) {
          last_sent = p;
          progress.Send(&p, 1);
        }
      };
    }
    model_ = vl::llm::Model::load(params_);
  }
  void OnProgress(const float* data, size_t count) override {
    Napi::HandleScope scope(Env());
    for (size_t i = 0; i < count; ++i) on_progress_.Call({Napi::Number::New(Env(), data[i])});
  }
  void Finish() override { owner_->loading_ = false; }
  Napi::Value Result(Napi::Env env) override {
    if (!owner_->disposed_) owner_->model_ = std::move(model_);
    return env.Undefined();
  }

 private:
  AddonModel* owner_;
  Napi::ObjectReference self_;  // keeps the owner alive while loading
  vl::llm::ModelParams params_;
  std::shared_ptr<vl::AbortFlag> abort_;
  Napi::FunctionReference on_progress_;
  std::shared_ptr<vl::llm::Model> model_;
};

class EmbeddingsWorker : public PromiseWorker {
 public:
  EmbeddingsWorker(Napi::Env env, std::shared_ptr<vl::llm::Model> model, std::vector<llama_token> tokens)
      : PromiseWorker(env), model_(std::move(model)), tokens_(std::move(tokens)) {}

 protected:
  void Run() override { rows_ = model_->token_embeddings(tokens_); }
  Napi::Value Result(Napi::Env env) override {
    auto out = Napi::Float32Array::New(env, rows_.size());
    std::copy(rows_.begin(), rows_.end(), out.Data());
    return out;
  }

 private:
  std::shared_ptr<vl::llm::Model> model_;
  std::vector<llama_token> tokens_;
  std::vector<float> rows_;
};

Napi::Function AddonModel::Define(Napi::Env env) {
  return DefineClass(env, "AddonModel",
                     {InstanceMethod<&AddonModel::Load>("load"), InstanceMethod<&AddonModel::Info>("info"),
                      InstanceMethod<&AddonModel::Tokenize>("tokenize"),
                      InstanceMethod<&AddonModel::Detokenize>("detokenize"),
                      InstanceMethod<&AddonModel::TokenEmbeddings>("tokenEmbeddings"),
                      InstanceMethod<&AddonModel::Dispose>("dispose")});
}

AddonModel::AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(info.Env(), "new AddonModel(path: string, options: object)");
  }
  params_.path = info[0].As<Napi::String>();
  Napi::Object options = info[1].As<Napi::Object>();
  Napi::Value layers = options.Get("gpuLayers");
  if (layers.IsNumber()) params_.gpu_layers = layers.As<Napi::Number>().Int32Value();
  params_.mmap = options.Get("mmap").ToBoolean();
  params_.gpu = gpu_choice_from(options.Get("gpu"));
}

std::shared_ptr<vl::llm::Model> AddonModel::Get(Napi::Env env) const {
  if (disposed_) throw coded_error(env, "DISPOSED", "the model has been disposed");
  if (!model_) throw coded_error(env, "NATIVE", "the model is not loaded yet");
  return model_;
}

Napi::Value AddonModel::Load(const Napi::CallbackInfo& info) {
  if (disposed_) throw coded_error(info.Env(), "DISPOSED", "the model has been disposed");
  if (loading_ || model_) throw coded_error(info.Env(), "NATIVE", "load() was already called");
  auto* worker = new ModelLoadWorker(info.Env(), this, JobOptions::From(info[0]));
  loading_ = true;
  return queue_worker(worker);
}

Napi::Value AddonModel::Info(const Napi::CallbackInfo& info) {
  auto model = Get(info.Env());
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("embeddingWidth", model->n_embd());
  out.Set("vocabularySize", model->n_vocab());
  out.Set("trainContextSize", model->n_ctx_train());
  out.Set("layers", model->n_layer());
  out.Set("addsBos", model->adds_bos());
  out.Set("description", model->description());
  out.Set("chatTemplate", model->chat_template());
  return out;
}

Napi::Value AddonModel::Tokenize(const Napi::CallbackInfo& info) {
  auto model = Get(info.Env());
  if (info.Length() < 3 || !info[0].IsString()) {
    throw Napi::TypeError::New(info.Env(), "tokenize(text: string, addBos: boolean, parseSpecial: boolean)");
  }
  return with_js_errors(info.Env(), [&] {
    return to_int32_array(info.Env(), model->tokenize(info[0].As<Napi::String>(), info[1].ToBoolean(), info[2].ToBoolean()));
  });
}

Napi::Value AddonModel::Detokenize(const Napi::CallbackInfo& info) {
  auto model = Get(info.Env());
  if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "detokenize(tokens: Int32Array, renderSpecial: boolean)");
  return with_js_errors(info.Env(), [&] {
    return Napi::String::New(info.Env(), model->detokenize(token_array(info[0]), info[1].ToBoolean()));
  });
}

Napi::Value AddonModel::TokenEmbeddings(const Napi::CallbackInfo& info) {
  return queue_worker(new EmbeddingsWorker(info.Env(), Get(info.Env()), token_array(info[0])));
}

void AddonModel::Dispose(const Napi::CallbackInfo&) {
  disposed_ = true;
  model_.reset();
}

void export_model(Napi::Env env, Napi::Object exports) { exports.Set("AddonModel", AddonModel::Define(env)); }

}  // namespace vl::addon
