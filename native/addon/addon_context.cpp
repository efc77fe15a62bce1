// AddonContext: a libllama context with N sequences (native/core/llm_context.h) for JavaScript.
// src/bindings/context.ts declares its TypeScript type.
//   new AddonContext(model: AddonModel, { contextSize, sequences, threads, batchSize })
//   init(): Promise<void>                       allocates the KV cache on a worker thread
//   contextSize(): number; position(seq): number; truncate(seq, keep); logits(seq): Float32Array | null
//   startGeneration(seq, { maxTokens, temperature, topK, topP, minP, repeatPenalty, frequencyPenalty,
//                          presencePenalty, seed?, grammar?, stopStrings })
//   endGeneration(seq)
//   step(items: { seq, part: Int32Array | Float32Array, logits: boolean }[], { abort? }):
//     Promise<{ completed: boolean, sampled: { seq, token, piece: Uint8Array, stopReason: string | null }[] }>
//   dispose()
// Steps run one at a time (src/llm/batch.ts sends the next once the last has resolved); the
// native context is shared with the step running on it, so dispose() during a step only drops
// this object's reference and the step frees it when it ends (the TypeScript side aborts it first).
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

// One typed array as a step part: token ids, or embedding rows (whose width Context::step
// checks against the model; here the array must at least be whole rows of some width).
vl::llm::Part step_part(Napi::Env env, const Napi::Value& value, int64_t width) {
  const napi_typedarray_type type = value.IsTypedArray() ? value.As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
  if (type != napi_int32_array && type != napi_float32_array) {
    throw Napi::TypeError::New(env, "step(items): each item's part must be an Int32Array or a Float32Array");
  }
  vl::llm::Part part;
  if (type == napi_int32_array) {
    auto array = value.As<Napi::Int32Array>();
    part.tokens = array.Data();
    part.n = static_cast<int64_t>(array.ElementLength());
  } else {
    auto array = value.As<Napi::Float32Array>();
    const int64_t length = static_cast<int64_t>(array.ElementLength());
    part.embeddings = array.Data();
    part.embedding_width = length % width == 0 ? width : length;
    part.n = length % width == 0 ? length / width : 1;
  }
  return part;
}

class StepWorker : public PromiseWorker {
 public:
  StepWorker(Napi::Env env, ContextPtr context, const Napi::Array& items, JobOptions options)
      : PromiseWorker(env), context_(std::move(context)), abort_(std::move(options.abort)) {
    const int64_t width = context_->model().n_embd();
    for (uint32_t i = 0; i < items.Length(); ++i) {
      Napi::Value value = items.Get(i);
      if (!value.IsObject()) throw Napi::TypeError::New(env, "step(items): each item must be { seq, part, logits }");
      Napi::Object item = value.As<Napi::Object>();
      Napi::Value part = item.Get("part");
      // The typed arrays stay referenced (and so alive) until the step is over.
      if (part.IsObject()) arrays_.push_back(Napi::Persistent(part.As<Napi::Object>()));
      items_.push_back({sequence_id(item.Get("seq")), step_part(env, part, width), item.Get("logits").ToBoolean().Value()});
    }
  }

 protected:
  void Run() override { result_ = context_->step(items_, abort_.get()); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array sampled = Napi::Array::New(env, result_.sampled.size());
    for (size_t i = 0; i < result_.sampled.size(); ++i) {
      const vl::llm::Sampled& s = result_.sampled[i];
      Napi::Object out = Napi::Object::New(env);
      out.Set("seq", s.seq);
      out.Set("token", s.token);
      out.Set("sampled", s.sampled);
      out.Set("piece", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(s.piece.data()), s.piece.size()));
      out.Set("stopReason", s.finished ? Napi::Value(Napi::String::New(env, vl::llm::stop_reason_name(s.reason))) : env.Null());
      sampled.Set(static_cast<uint32_t>(i), out);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("completed", result_.completed);
    out.Set("sampled", sampled);
    return out;
  }

 private:
  ContextPtr context_;
  std::shared_ptr<vl::AbortFlag> abort_;
  std::vector<Napi::ObjectReference> arrays_;
  std::vector<vl::llm::StepItem> items_;
  vl::llm::StepResult result_;
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
                        InstanceMethod<&AddonContext::StartGeneration>("startGeneration"),
                        InstanceMethod<&AddonContext::EndGeneration>("endGeneration"),
                        InstanceMethod<&AddonContext::Step>("step"),
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

  Napi::Value StartGeneration(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "startGeneration(seq: number, options: object)");
    ContextPtr context = Get(env);
    const vl::llm::GenerateParams params = generate_params(info[1].As<Napi::Object>());
    with_js_errors(env, [&] { context->start_generation(sequence_id(info[0]), params); });
    return env.Undefined();
  }

  Napi::Value EndGeneration(const Napi::CallbackInfo& info) {
    ContextPtr context = Get(info.Env());
    with_js_errors(info.Env(), [&] { context->end_generation(sequence_id(info[0])); });
    return info.Env().Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "step(items: array, job?)");
    return queue_worker(new StepWorker(info.Env(), Get(info.Env()), info[0].As<Napi::Array>(), JobOptions::From(info[1])));
  }

  Napi::Value Logits(const Napi::CallbackInfo& info) {
    ContextPtr context = Get(info.Env());
    const std::vector<float>& logits = with_js_errors(info.Env(), [&]() -> const std::vector<float>& { return context->last_logits(sequence_id(info[0])); });
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
