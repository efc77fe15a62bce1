// AddonContext: a libllama context with N sequences (native/core/llm_context.h) for JavaScript.
// src/bindings/context.ts declares its TypeScript type.
//   new AddonContext(model: AddonModel, { contextSize, sequences, threads, batchSize })
//   init(): Promise<void>                       allocates the KV cache on a worker thread
//   contextSize(): number; position(seq): number; truncate(seq, keep); logits(seq): Float32Array | null
//   evaluate(seq, parts: (Int32Array | Float32Array)[], { abort? }): Promise<{ completed: boolean }>
//   generate(seq, { maxTokens, temperature, topK, topP, minP, repeatPenalty, frequencyPenalty,
//                   presencePenalty, seed?, grammar?, stopStrings },
//            { abort?, onProgress?(bytes: Uint8Array) }):
//     Promise<{ tokens: Int32Array, text: Uint8Array, sampled: number, stopReason: string }>
//   dispose()
// Jobs on one context run one at a time (the TypeScript context queues them); the native context
// is shared with the job running on it, so dispose() during a job only drops this object's
// reference and the job frees it when it ends (the TypeScript side aborts it first).
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "addon/addon_model.h"
#include "addon/exports.h"
#include "addon/llm_arrays.h"
#include "addon/promise_worker.h"
#include "core/llm_context.h"

namespace vl::addon {

namespace {

using ContextPtr = std::shared_ptr<vl::llm::Context>;

uint32_t required_u32(const Napi::Object& options, const char* key) {
  Napi::Value v = options.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(options.Env(), std::string("expected a number for ") + key);
  return v.As<Napi::Number>().Uint32Value();
}

double required_number(const Napi::Object& options, const char* key) {
  Napi::Value v = options.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(options.Env(), std::string("expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

int sequence_id(const Napi::Value& value) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), "expected a sequence id");
  return value.As<Napi::Number>().Int32Value();
}

class InitWorker : public PromiseWorker {
 public:
  InitWorker(Napi::Env env, std::shared_ptr<vl::llm::Model> model, vl::llm::ContextParams params, ContextPtr* slot,
             const bool* disposed, Napi::Object owner)
      : PromiseWorker(env), model_(std::move(model)), params_(params), slot_(slot), disposed_(disposed),
        owner_(Napi::Persistent(owner)) {}

 protected:
  void Run() override { context_ = std::make_shared<vl::llm::Context>(model_, params_); }
  Napi::Value Result(Napi::Env env) override {
    if (!*disposed_) *slot_ = std::move(context_);
    return env.Undefined();
  }

 private:
  std::shared_ptr<vl::llm::Model> model_;
  vl::llm::ContextParams params_;
  ContextPtr* slot_;             // the owner's context_, set on the JS thread
  const bool* disposed_;         // the owner's disposed_
  Napi::ObjectReference owner_;  // keeps the slot's owner alive
  ContextPtr context_;
};

class EvaluateWorker : public PromiseWorker {
 public:
  EvaluateWorker(Napi::Env env, ContextPtr context, int seq, const Napi::Array& parts, JobOptions options)
      : PromiseWorker(env), context_(std::move(context)), seq_(seq), abort_(std::move(options.abort)) {
    const int64_t width = context_->model().n_embd();
    for (uint32_t i = 0; i < parts.Length(); ++i) {
      Napi::Value part = parts.Get(i);
      const napi_typedarray_type type = part.IsTypedArray() ? part.As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
      if (type != napi_int32_array && type != napi_float32_array) {
        throw Napi::TypeError::New(env, "evaluate(parts): each part must be an Int32Array or a Float32Array");
      }
      auto array = part.As<Napi::TypedArray>();
      // The typed arrays stay referenced (and so alive) until the job is over.
      arrays_.push_back(Napi::Persistent(array.As<Napi::Object>()));
      vl::llm::Part p;
      if (type == napi_int32_array) {
        p.tokens = array.As<Napi::Int32Array>().Data();
        p.n = static_cast<int64_t>(array.ElementLength());
      } else {
        p.embeddings = array.As<Napi::Float32Array>().Data();
        // The width is checked against the model in Context::evaluate; here the array must at
        // least be whole rows of some width.
        const int64_t length = static_cast<int64_t>(array.ElementLength());
        p.embedding_width = length % width == 0 ? width : length;
        p.n = length % width == 0 ? length / width : 1;
      }
      parts_.push_back(p);
    }
  }

 protected:
  void Run() override { completed_ = context_->evaluate(seq_, parts_, abort_.get()); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("completed", completed_);
    return out;
  }

 private:
  ContextPtr context_;
  int seq_;
  std::shared_ptr<vl::AbortFlag> abort_;
  std::vector<Napi::ObjectReference> arrays_;
  std::vector<vl::llm::Part> parts_;
  bool completed_ = false;
};

class GenerateWorker : public ProgressPromiseWorker<char> {
 public:
  GenerateWorker(Napi::Env env, ContextPtr context, int seq, vl::llm::GenerateParams params, JobOptions options)
      : ProgressPromiseWorker(env), context_(std::move(context)), seq_(seq), params_(std::move(params)),
        abort_(std::move(options.abort)) {
    if (!options.on_progress.IsEmpty()) on_piece_ = Napi::Persistent(options.on_progress);
  }

 protected:
  void Run(const Progress& progress) override {
    result_ = context_->generate(seq_, params_, [&](const std::string& piece) {
      if (!piece.empty()) progress.Send(piece.data(), piece.size());
    }, abort_.get());
  }
  void OnProgress(const char* data, size_t count) override {
    Napi::HandleScope scope(Env());
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
  ContextPtr context_;
  int seq_;
  vl::llm::GenerateParams params_;
  std::shared_ptr<vl::AbortFlag> abort_;
  Napi::FunctionReference on_piece_;
  vl::llm::GenerateResult result_;
};

vl::llm::GenerateParams generate_params(const Napi::Object& o) {
  vl::llm::GenerateParams params;
  params.max_tokens = static_cast<int>(required_u32(o, "maxTokens"));
  params.sampling.temperature = static_cast<float>(required_number(o, "temperature"));
  params.sampling.top_k = static_cast<int>(required_number(o, "topK"));
  params.sampling.top_p = static_cast<float>(required_number(o, "topP"));
  params.sampling.min_p = static_cast<float>(required_number(o, "minP"));
  params.sampling.repeat_penalty = static_cast<float>(required_number(o, "repeatPenalty"));
  params.sampling.frequency_penalty = static_cast<float>(required_number(o, "frequencyPenalty"));
  params.sampling.presence_penalty = static_cast<float>(required_number(o, "presencePenalty"));
  if (o.Get("grammar").IsString()) params.sampling.grammar = o.Get("grammar").ToString();
  params.sampling.seed = o.Get("seed").IsNumber() ? o.Get("seed").As<Napi::Number>().Uint32Value() : LLAMA_DEFAULT_SEED;
  Napi::Value stops = o.Get("stopStrings");
  if (stops.IsArray()) {
    auto array = stops.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) params.stop_strings.push_back(array.Get(i).ToString());
  }
  return params;
}

}  // namespace

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
                        InstanceMethod<&AddonContext::Dispose>("dispose")});
  }

  explicit AddonContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonContext>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject()) {
      throw Napi::TypeError::New(env, "new AddonContext(model: AddonModel, options: object)");
    }
    model_ = Napi::ObjectWrap<AddonModel>::Unwrap(info[0].As<Napi::Object>())->Get(env);
    Napi::Object options = info[1].As<Napi::Object>();
    params_.n_ctx = required_u32(options, "contextSize");
    params_.n_seq = required_u32(options, "sequences");
    params_.n_threads = static_cast<int>(required_u32(options, "threads"));
    params_.n_batch = required_u32(options, "batchSize");
  }

 private:
  ContextPtr Get(Napi::Env env) const {
    if (disposed_) throw coded_error(env, "DISPOSED", "the context has been disposed");
    if (!context_) throw coded_error(env, "NATIVE", "the context is not initialised (call init())");
    return context_;
  }

  Napi::Value Init(const Napi::CallbackInfo& info) {
    if (disposed_) throw coded_error(info.Env(), "DISPOSED", "the context has been disposed");
    if (initialising_ || context_) throw coded_error(info.Env(), "NATIVE", "init() was already called");
    initialising_ = true;
    return queue_worker(new InitWorker(info.Env(), model_, params_, &context_, &disposed_, Value()));
  }

  Napi::Value ContextSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), Get(info.Env())->n_ctx()); }

  Napi::Value Position(const Napi::CallbackInfo& info) {
    ContextPtr context = Get(info.Env());
    return with_js_errors(info.Env(), [&] { return Napi::Number::New(info.Env(), static_cast<double>(context->n_past(sequence_id(info[0])))); });
  }

  Napi::Value Truncate(const Napi::CallbackInfo& info) {
    ContextPtr context = Get(info.Env());
    if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "truncate(seq: number, keep: number)");
    with_js_errors(info.Env(), [&] { context->truncate(sequence_id(info[0]), info[1].As<Napi::Number>().Int64Value()); });
    return info.Env().Undefined();
  }

  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(info.Env(), "evaluate(seq: number, parts: array, job?)");
    return queue_worker(new EvaluateWorker(info.Env(), Get(info.Env()), sequence_id(info[0]), info[1].As<Napi::Array>(),
                                           JobOptions::From(info[2])));
  }

  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "generate(seq: number, options: object, job?)");
    return queue_worker(new GenerateWorker(env, Get(env), sequence_id(info[0]), generate_params(info[1].As<Napi::Object>()),
                                           JobOptions::From(info[2])));
  }

  Napi::Value Logits(const Napi::CallbackInfo& info) {
    ContextPtr context = Get(info.Env());
    const std::vector<float> logits = with_js_errors(info.Env(), [&] { return context->last_logits(sequence_id(info[0])); });
    if (logits.empty()) return info.Env().Null();
    auto out = Napi::Float32Array::New(info.Env(), logits.size());
    std::copy(logits.begin(), logits.end(), out.Data());
    return out;
  }

  void Dispose(const Napi::CallbackInfo&) {
    disposed_ = true;
    context_.reset();
    model_.reset();
  }

  std::shared_ptr<vl::llm::Model> model_;
  vl::llm::ContextParams params_{};
  ContextPtr context_;
  bool initialising_ = false;
  bool disposed_ = false;
};

void export_context(Napi::Env env, Napi::Object exports) { exports.Set("AddonContext", AddonContext::Define(env)); }

}  // namespace vl::addon
