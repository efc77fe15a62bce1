// The language-model bindings: AddonModel and AddonContext (one class per native object, in
// node-llama-cpp's style). Every slow call runs on a worker thread and returns a Promise;
// rejections carry a `code` property (VideoLlamaErrorCode). The TypeScript wrappers in
// src/llm/ serialise the calls on a context; these classes still refuse overlapping jobs.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "addon/gpu_choice.h"
#include "addon/registry.h"
#include "core/llm.h"

namespace vl::addon {

namespace {

Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// Runs `Run` on a worker thread and settles a Promise; `Progress` items sent from the worker
// reach `OnProgress` on the JS thread, all of them before the Promise settles.
template <typename Progress>
class PromiseWorker : public Napi::AsyncProgressQueueWorker<Progress> {
 public:
  using Base = Napi::AsyncProgressQueueWorker<Progress>;
  using ExecutionProgress = typename Base::ExecutionProgress;

  explicit PromiseWorker(Napi::Env env) : Base(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  virtual void Run(const ExecutionProgress& progress) = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  // Called on the JS thread once the job is over, whatever its outcome.
  virtual void Finish() {}
  void OnProgress(const Progress*, size_t) override {}

 private:
  void Execute(const ExecutionProgress& progress) final {
    try {
      Run(progress);
    } catch (const vl::llm::Error& e) {
      code_ = e.code;
      this->SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "NATIVE";
      this->SetError(e.what());
    }
  }
  void OnOK() final {
    Finish();
    deferred_.Resolve(Result(this->Env()));
  }
  void OnError(const Napi::Error& error) final {
    Finish();
    deferred_.Reject(coded_error(this->Env(), code_, error.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  std::string code_ = "NATIVE";
};

uint32_t optional_u32(const Napi::Object& options, const char* key, uint32_t fallback) {
  Napi::Value v = options.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
}

std::vector<llama_token> token_array(const Napi::Value& value) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(value.Env(), "expected an Int32Array of token ids");
  }
  auto array = value.As<Napi::Int32Array>();
  return std::vector<llama_token>(array.Data(), array.Data() + array.ElementLength());
}

Napi::Int32Array to_int32_array(Napi::Env env, const std::vector<llama_token>& tokens) {
  auto out = Napi::Int32Array::New(env, tokens.size());
  std::copy(tokens.begin(), tokens.end(), out.Data());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AddonModel

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonModel",
                       {InstanceMethod<&AddonModel::Load>("load"),
                        InstanceMethod<&AddonModel::Info>("info"),
                        InstanceMethod<&AddonModel::Meta>("meta"),
                        InstanceMethod<&AddonModel::Tokenize>("tokenize"),
                        InstanceMethod<&AddonModel::Detokenize>("detokenize"),
                        InstanceMethod<&AddonModel::IsEog>("isEog"),
                        InstanceMethod<&AddonModel::TokenEmbeddings>("tokenEmbeddings"),
                        InstanceMethod<&AddonModel::Dispose>("dispose")});
  }

  // new AddonModel(path, { gpuLayers?, mmap?, gpu? }) (gpu: see gpu_choice.h)
  explicit AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
      throw Napi::TypeError::New(info.Env(), "new AddonModel(path: string, options: object)");
    }
    params_.path = info[0].As<Napi::String>();
    Napi::Value layers = info[1].As<Napi::Object>().Get("gpuLayers");
    if (layers.IsNumber()) params_.gpu_layers = layers.As<Napi::Number>().Int32Value();
    params_.mmap = info[1].As<Napi::Object>().Get("mmap").ToBoolean();
    params_.gpu = gpu_choice_from(info[1].As<Napi::Object>().Get("gpu"));
  }

  // The loaded model, or a DISPOSED / NATIVE error for JS.
  std::shared_ptr<vl::llm::Model> Get(Napi::Env env) const {
    if (disposed_) throw coded_error(env, "DISPOSED", "the model has been disposed");
    if (!model_) throw coded_error(env, "NATIVE", "the model is not loaded yet");
    return model_;
  }

 private:
  class LoadWorker : public PromiseWorker<float> {
   public:
    LoadWorker(Napi::Env env, AddonModel* owner, Napi::Value on_progress)
        : PromiseWorker<float>(env), owner_(owner), self_(Napi::Persistent(owner->Value())), params_(owner->params_) {
      if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    }

   protected:
    void Run(const ExecutionProgress& progress) override {
      float last_sent = -1.0f;
      if (!on_progress_.IsEmpty()) {
        params_.on_progress = [&](float p) {
          // libllama reports per tensor; a hundredth is plenty for a progress bar.
          if (p - last_sent >= 0.01f || p >= 1.0f) {
            last_sent = p;
            progress.Send(&p, 1);
          }
          return true;
        };
      }
      model_ = vl::llm::Model::load(params_);
    }
    void OnProgress(const float* data, size_t count) override {
      for (size_t i = 0; i < count; ++i) on_progress_.Call({Napi::Number::New(Env(), data[i])});
    }
    void Finish() override {
      owner_->loading_ = false;
      if (!owner_->disposed_) owner_->model_ = model_;
    }

   private:
    AddonModel* owner_;
    Napi::ObjectReference self_;  // keeps the owner alive while loading
    Napi::FunctionReference on_progress_;
    vl::llm::ModelParams params_;
    std::shared_ptr<vl::llm::Model> model_;
  };

  class EmbeddingsWorker : public PromiseWorker<char> {
   public:
    EmbeddingsWorker(Napi::Env env, std::shared_ptr<vl::llm::Model> model, std::vector<llama_token> tokens)
        : PromiseWorker<char>(env), model_(std::move(model)), tokens_(std::move(tokens)) {}

   protected:
    void Run(const ExecutionProgress&) override { rows_ = model_->token_embeddings(tokens_); }
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

  // load(onProgress?: (fraction) => void): Promise<void>
  Napi::Value Load(const Napi::CallbackInfo& info) {
    if (disposed_) throw coded_error(info.Env(), "DISPOSED", "the model has been disposed");
    if (loading_ || model_) throw coded_error(info.Env(), "NATIVE", "load() was already called");
    loading_ = true;
    auto* worker = new LoadWorker(info.Env(), this, info.Length() > 0 ? info[0] : info.Env().Undefined());
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
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

  // meta(key): string | undefined
  Napi::Value Meta(const Napi::CallbackInfo& info) {
    auto model = Get(info.Env());
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "meta(key: string)");
    const std::string value = model->meta(info[0].As<Napi::String>());
    return value.empty() ? info.Env().Undefined() : Napi::String::New(info.Env(), value);
  }

  // tokenize(text, addBos, parseSpecial): Int32Array — fast enough to run on the JS thread.
  Napi::Value Tokenize(const Napi::CallbackInfo& info) {
    auto model = Get(info.Env());
    if (info.Length() < 3 || !info[0].IsString()) {
      throw Napi::TypeError::New(info.Env(), "tokenize(text: string, addBos: boolean, parseSpecial: boolean)");
    }
    try {
      return to_int32_array(info.Env(), model->tokenize(info[0].As<Napi::String>(), info[1].ToBoolean(), info[2].ToBoolean()));
    } catch (const vl::llm::Error& e) {
      throw coded_error(info.Env(), e.code, e.what());
    }
  }

  // detokenize(tokens: Int32Array, renderSpecial): string
  Napi::Value Detokenize(const Napi::CallbackInfo& info) {
    auto model = Get(info.Env());
    if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "detokenize(tokens: Int32Array, renderSpecial: boolean)");
    try {
      const std::string text = model->detokenize(token_array(info[0]), info[1].ToBoolean());
      return Napi::String::New(info.Env(), text);
    } catch (const vl::llm::Error& e) {
      throw coded_error(info.Env(), e.code, e.what());
    }
  }

  Napi::Value IsEog(const Napi::CallbackInfo& info) {
    auto model = Get(info.Env());
    return Napi::Boolean::New(info.Env(), info[0].IsNumber() && model->is_eog(info[0].As<Napi::Number>().Int32Value()));
  }

  // tokenEmbeddings(tokens: Int32Array): Promise<Float32Array>  ([n_embd, n] in ggml order)
  Napi::Value TokenEmbeddings(const Napi::CallbackInfo& info) {
    auto* worker = new EmbeddingsWorker(info.Env(), Get(info.Env()), token_array(info[0]));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  // Contexts keep their own reference, so the weights go when the last of them is disposed.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    disposed_ = true;
    model_.reset();
    return info.Env().Undefined();
  }

  vl::llm::ModelParams params_;
  std::shared_ptr<vl::llm::Model> model_;
  bool loading_ = false;
  bool disposed_ = false;
};

// ---------------------------------------------------------------------------------------------
// AddonContext

class AddonContext : public Napi::ObjectWrap<AddonContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AddonContext",
                       {InstanceMethod<&AddonContext::Init>("init"),
                        InstanceMethod<&AddonContext::ContextSize>("contextSize"),
                        InstanceMethod<&AddonContext::Position>("position"),
                        InstanceMethod<&AddonContext::Truncate>("truncate"),
                        InstanceMethod<&AddonContext::Evaluate>("evaluate"),
                        InstanceMethod<&AddonContext::Generate>("generate"),
                        InstanceMethod<&AddonContext::Logits>("logits"),
                        InstanceMethod<&AddonContext::Abort>("abort"),
                        InstanceMethod<&AddonContext::Dispose>("dispose")});
  }

  // new AddonContext(model, { contextSize?, threads?, batchSize? })
  explicit AddonContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonContext>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject()) {
      throw Napi::TypeError::New(env, "new AddonContext(model: AddonModel, options: object)");
    }
    model_ = Napi::ObjectWrap<AddonModel>::Unwrap(info[0].As<Napi::Object>())->Get(env);
    Napi::Object options = info[1].As<Napi::Object>();
    params_.n_ctx = optional_u32(options, "contextSize", 0);
    params_.n_threads = static_cast<int>(optional_u32(options, "threads", 4));
    params_.n_batch = optional_u32(options, "batchSize", 512);
  }

 private:
  // The native context is shared with the job running on it, so dispose() during a job only
  // drops this object's reference; the job ends at its next abort check and frees it.
  using ContextPtr = std::shared_ptr<vl::llm::Context>;

  class InitWorker : public PromiseWorker<char> {
   public:
    InitWorker(Napi::Env env, AddonContext* owner)
        : PromiseWorker<char>(env), owner_(owner), self_(Napi::Persistent(owner->Value())), model_(owner->model_), params_(owner->params_) {}

   protected:
    void Run(const ExecutionProgress&) override { context_ = std::make_shared<vl::llm::Context>(model_, params_); }
    void Finish() override {
      owner_->busy_ = false;
      if (!owner_->disposed_) owner_->context_ = context_;
    }

   private:
    AddonContext* owner_;
    Napi::ObjectReference self_;
    std::shared_ptr<vl::llm::Model> model_;
    vl::llm::ContextParams params_;
    ContextPtr context_;
  };

  // Base of the jobs that run on an initialised context.
  template <typename Progress>
  class ContextJob : public PromiseWorker<Progress> {
   public:
    ContextJob(Napi::Env env, AddonContext* owner)
        : PromiseWorker<Progress>(env), owner_(owner), self_(Napi::Persistent(owner->Value())), context_(owner->context_) {}

   protected:
    void Finish() override { owner_->busy_ = false; }
    AddonContext* owner_;
    Napi::ObjectReference self_;
    ContextPtr context_;
  };

  class EvaluateWorker : public ContextJob<char> {
   public:
    EvaluateWorker(Napi::Env env, AddonContext* owner, const Napi::Array& parts) : ContextJob<char>(env, owner) {
      const int64_t width = owner->model_->n_embd();
      for (uint32_t i = 0; i < parts.Length(); ++i) {
        Napi::Value part = parts.Get(i);
        if (!part.IsTypedArray()) throw Napi::TypeError::New(env, "evaluate(parts): each part must be an Int32Array or a Float32Array");
        auto array = part.As<Napi::TypedArray>();
        // The typed arrays stay referenced (and so alive) until the job is over.
        arrays_.push_back(Napi::Persistent(array.As<Napi::Object>()));
        vl::llm::Part p;
        if (array.TypedArrayType() == napi_int32_array) {
          p.tokens = array.As<Napi::Int32Array>().Data();
          p.n = static_cast<int64_t>(array.ElementLength());
        } else if (array.TypedArrayType() == napi_float32_array) {
          p.embeddings = array.As<Napi::Float32Array>().Data();
          // The width is checked against the model in vl::llm::Context::evaluate; here the
          // array must at least be whole rows of some width.
          const int64_t length = static_cast<int64_t>(array.ElementLength());
          p.embedding_width = length % width == 0 ? width : length;
          p.n = length % width == 0 ? length / width : 1;
        } else {
          throw Napi::TypeError::New(env, "evaluate(parts): each part must be an Int32Array or a Float32Array");
        }
        parts_.push_back(p);
      }
    }

   protected:
    void Run(const ExecutionProgress&) override { completed_ = context_->evaluate(parts_); }
    Napi::Value Result(Napi::Env env) override {
      Napi::Object out = Napi::Object::New(env);
      out.Set("completed", completed_);
      return out;
    }

   private:
    std::vector<Napi::ObjectReference> arrays_;
    std::vector<vl::llm::Part> parts_;
    bool completed_ = false;
  };

  class GenerateWorker : public ContextJob<char> {
   public:
    GenerateWorker(Napi::Env env, AddonContext* owner, vl::llm::GenerateParams params, Napi::Value on_piece)
        : ContextJob<char>(env, owner), params_(std::move(params)) {
      if (on_piece.IsFunction()) on_piece_ = Napi::Persistent(on_piece.As<Napi::Function>());
    }

   protected:
    void Run(const ExecutionProgress& progress) override {
      result_ = context_->generate(params_, [&](const std::string& piece) {
        if (!piece.empty()) progress.Send(piece.data(), piece.size());
      });
    }
    void OnProgress(const char* data, size_t count) override {
      if (!on_piece_.IsEmpty()) on_piece_.Call({Napi::Buffer<uint8_t>::Copy(Env(), reinterpret_cast<const uint8_t*>(data), count)});
    }
    Napi::Value Result(Napi::Env env) override {
      Napi::Object out = Napi::Object::New(env);
      out.Set("tokens", to_int32_array(env, result_.evaluated));
      out.Set("text", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(result_.text.data()), result_.text.size()));
      out.Set("sampled", result_.sampled);
      out.Set("stopReason", vl::llm::stop_reason_name(result_.reason));
      return out;
    }

   private:
    vl::llm::GenerateParams params_;
    Napi::FunctionReference on_piece_;
    vl::llm::GenerateResult result_;
  };

  // Checks the context can take a job now; marks it busy and clears a stale abort request.
  void BeginJob(Napi::Env env) {
    RequireContext(env);
    if (busy_) throw coded_error(env, "NATIVE", "the context is already running a job");
    busy_ = true;
    context_->clear_abort();
  }

  void RequireContext(Napi::Env env) const {
    if (disposed_) throw coded_error(env, "DISPOSED", "the context has been disposed");
    if (!context_) throw coded_error(env, "NATIVE", "the context is not initialised (call init())");
  }

  template <typename Worker>
  static Napi::Value Start(Worker* worker) {
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  // init(): Promise<void>
  Napi::Value Init(const Napi::CallbackInfo& info) {
    if (disposed_) throw coded_error(info.Env(), "DISPOSED", "the context has been disposed");
    if (busy_ || context_) throw coded_error(info.Env(), "NATIVE", "init() was already called");
    busy_ = true;
    return Start(new InitWorker(info.Env(), this));
  }

  Napi::Value ContextSize(const Napi::CallbackInfo& info) {
    RequireContext(info.Env());
    return Napi::Number::New(info.Env(), context_->n_ctx());
  }

  // position(): number of positions now in the KV cache.
  Napi::Value Position(const Napi::CallbackInfo& info) {
    RequireContext(info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(context_->n_past()));
  }

  // truncate(keep): drops KV positions >= keep.
  Napi::Value Truncate(const Napi::CallbackInfo& info) {
    RequireContext(info.Env());
    if (busy_) throw coded_error(info.Env(), "NATIVE", "the context is running a job");
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "truncate(keep: number)");
    try {
      context_->truncate(info[0].As<Napi::Number>().Int64Value());
    } catch (const vl::llm::Error& e) {
      throw coded_error(info.Env(), e.code, e.what());
    }
    return info.Env().Undefined();
  }

  // evaluate(parts: (Int32Array | Float32Array)[]): Promise<{ completed: boolean }>
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "evaluate(parts: array)");
    RequireContext(info.Env());
    auto* worker = new EvaluateWorker(info.Env(), this, info[0].As<Napi::Array>());
    try {
      BeginJob(info.Env());
    } catch (...) {
      delete worker;
      throw;
    }
    return Start(worker);
  }

  // generate({ maxTokens, temperature, topK, topP, repeatPenalty, seed?, stopStrings }, onPiece):
  //   Promise<{ tokens: Int32Array, text: Uint8Array, sampled: number, stopReason: string }>
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "generate(options: object, onPiece?: function)");
    Napi::Object o = info[0].As<Napi::Object>();
    vl::llm::GenerateParams params;
    params.max_tokens = static_cast<int>(optional_u32(o, "maxTokens", 300));
    auto number = [&](const char* key, double fallback) {
      Napi::Value v = o.Get(key);
      return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
    };
    params.sampling.temperature = static_cast<float>(number("temperature", params.sampling.temperature));
    params.sampling.top_k = static_cast<int>(number("topK", params.sampling.top_k));
    params.sampling.top_p = static_cast<float>(number("topP", params.sampling.top_p));
    params.sampling.repeat_penalty = static_cast<float>(number("repeatPenalty", params.sampling.repeat_penalty));
    params.sampling.seed = optional_u32(o, "seed", LLAMA_DEFAULT_SEED);
    Napi::Value stops = o.Get("stopStrings");
    if (stops.IsArray()) {
      auto array = stops.As<Napi::Array>();
      for (uint32_t i = 0; i < array.Length(); ++i) params.stop_strings.push_back(array.Get(i).ToString());
    }
    BeginJob(env);
    return Start(new GenerateWorker(env, this, std::move(params), info.Length() > 1 ? info[1] : env.Undefined()));
  }

  // logits(): Float32Array of the last evaluated position, or null.
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    RequireContext(info.Env());
    if (busy_) throw coded_error(info.Env(), "NATIVE", "the context is running a job");
    const std::vector<float> logits = context_->last_logits();
    if (logits.empty()) return info.Env().Null();
    auto out = Napi::Float32Array::New(info.Env(), logits.size());
    std::copy(logits.begin(), logits.end(), out.Data());
    return out;
  }

  // abort(): asks the running job to stop at its next check (within one token).
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    if (context_) context_->request_abort();
    return info.Env().Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    disposed_ = true;
    if (context_) context_->request_abort();
    context_.reset();
    model_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<vl::llm::Model> model_;
  vl::llm::ContextParams params_;
  ContextPtr context_;
  bool busy_ = false;
  bool disposed_ = false;
};

// libllama and ggml log to stderr until told otherwise; this runs when the addon is loaded,
// before the module's Init loads the backends (which logs too).
[[maybe_unused]] static const bool logs_captured = (vl::llm::capture_logs(), true);

static AddonRegistration registration([](Napi::Env env, Napi::Object exports) {
  exports.Set("AddonModel", AddonModel::Define(env));
  exports.Set("AddonContext", AddonContext::Define(env));
});

}  // namespace vl::addon
