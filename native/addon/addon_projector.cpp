// AddonProjector: the projector (native/core/projector.h) for JavaScript.
//   new AddonProjector(path, { threads?, gpu? } (gpu: see gpu_choice.h)); info(): ProjectorInfo
//   load({ abort?, onProgress?(fraction) }): Promise<void>   ABORTED frees what was loaded
//   encodeVideo(tensor: Float32Array, shape: number[], options?) / encodeAudio(...):
//     Promise<{ tokens, dim, data: Float32Array, stages?: Record<string, { shape, data }> }>
//     options: { stages?: boolean, abort?: AbortFlag, onProgress?: (stage, completed, total) => void }
//   computeBytes(): number (bytes of the compute buffers so far)
//   dispose()
// The input is read in place on the worker thread; the output array is allocated up front and
// filled there, so neither is copied. N-API only: the work is in native/core.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "addon/abort_flag.h"
#include "addon/gpu_choice.h"
#include "addon/promise_worker.h"
#include "addon/exports.h"
#include "core/projector.h"

namespace vl::addon {

// ProjectorInfo's field types as JavaScript values.
static Napi::Value to_js(Napi::Env env, bool v) { return Napi::Boolean::New(env, v); }
static Napi::Value to_js(Napi::Env env, int v) { return Napi::Number::New(env, v); }
static Napi::Value to_js(Napi::Env env, uint32_t v) { return Napi::Number::New(env, v); }
static Napi::Value to_js(Napi::Env env, size_t v) { return Napi::Number::New(env, static_cast<double>(v)); }
static Napi::Value to_js(Napi::Env env, float v) { return Napi::Number::New(env, v); }
static Napi::Value to_js(Napi::Env env, const std::string& v) { return Napi::String::New(env, v); }
static Napi::Value to_js(Napi::Env env, const Rgb& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) a.Set(i, v[i]);
  return a;
}

class AddonProjector : public Napi::ObjectWrap<AddonProjector> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonProjector(const Napi::CallbackInfo& info);

  std::string path_;
  ProjectorOptions options_;
  std::shared_ptr<ProjectorState> state_;  // set by load(), cleared by dispose()
  bool disposed_ = false;

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value ComputeBytes(const Napi::CallbackInfo& info);
  Napi::Value EncodeVideo(const Napi::CallbackInfo& info) { return Encode(info, Modality::Video); }
  Napi::Value EncodeAudio(const Napi::CallbackInfo& info) { return Encode(info, Modality::Audio); }
  void Dispose(const Napi::CallbackInfo& info);

  enum class Modality { Video, Audio };
  Napi::Value Encode(const Napi::CallbackInfo& info, Modality modality);
  std::shared_ptr<ProjectorState> Loaded(Napi::Env env) const;
};

class LoadWorker : public ProgressPromiseWorker<float> {
 public:
  LoadWorker(Napi::Env env, AddonProjector* owner, JobOptions job)
      : ProgressPromiseWorker(env), owner_(owner), options_(owner->options_), abort_(std::move(job.abort)) {
    owner_->Ref();
    options_.abort = abort_.get();
    if (!job.on_progress.IsEmpty()) on_progress_ = Napi::Persistent(job.on_progress);
  }
  ~LoadWorker() override { owner_->Unref(); }

 protected:
  void Run(const Progress& progress) override {
    if (!on_progress_.IsEmpty()) options_.on_progress = [&progress](float p) { progress.Send(&p, 1); };
    state_ = std::make_shared<ProjectorState>(ProjectorModel::load(owner_->path_, options_));
  }
  void OnProgress(const float* data, size_t count) override {
    Napi::HandleScope scope(Env());
    for (size_t i = 0; i < count; ++i) on_progress_.Call({Napi::Number::New(Env(), data[i])});
  }
  Napi::Value Result(Napi::Env env) override {
    if (!owner_->disposed_) owner_->state_ = std::move(state_);
    return env.Undefined();
  }

 private:
  AddonProjector* owner_;
  ProjectorOptions options_;
  std::shared_ptr<vl::AbortFlag> abort_;
  Napi::FunctionReference on_progress_;
  std::shared_ptr<ProjectorState> state_;
};

class EncodeWorker : public ProgressPromiseWorker<StageProgress> {
 public:
  EncodeWorker(Napi::Env env, std::shared_ptr<ProjectorState> state, bool video, Napi::Float32Array input,
               std::vector<int64_t> shape, size_t output_size)
      : ProgressPromiseWorker(env), state_(std::move(state)), video_(video), shape_(std::move(shape)) {
    Napi::Float32Array output = Napi::Float32Array::New(env, output_size);
    input_ = Napi::Persistent(input);
    output_ = Napi::Persistent(output);
    input_data_ = input.Data();
    output_data_ = output.Data();
  }

  void SetOptions(bool collect_stages, JobOptions job) {
    params_.collect_stages = collect_stages;
    abort_ = std::move(job.abort);
    params_.abort = abort_.get();
    if (!job.on_progress.IsEmpty()) on_progress_ = Napi::Persistent(job.on_progress);
  }

 protected:
  void Run(const Progress& progress) override {
    EncodeParams params = params_;
    if (!on_progress_.IsEmpty()) params.on_progress = [&progress](const StageProgress& p) { progress.Send(&p, 1); };
    result_ = video_ ? state_->encode_video(input_data_, shape_, output_data_, params)
                     : state_->encode_audio(input_data_, shape_, output_data_, params);
  }

  void OnProgress(const StageProgress* events, size_t count) override {
    Napi::HandleScope scope(Env());
    for (size_t i = 0; i < count; ++i) {
      // stage names are string literals of native/core, valid for the whole run
      on_progress_.Call({Napi::String::New(Env(), events[i].stage), Napi::Number::New(Env(), events[i].completed),
                         Napi::Number::New(Env(), events[i].total)});
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("tokens", result_.tokens);
    out.Set("dim", result_.dim);
    out.Set("data", output_.Value());
    if (params_.collect_stages) out.Set("stages", StagesToJs(env));
    return out;
  }

 private:
  Napi::Object StagesToJs(Napi::Env env) const {
    Napi::Object stages = Napi::Object::New(env);
    for (const auto& [name, tensor] : result_.stages) {
      Napi::Array shape = Napi::Array::New(env, tensor.shape.size());
      for (uint32_t i = 0; i < tensor.shape.size(); ++i) shape.Set(i, static_cast<double>(tensor.shape[i]));
      Napi::Float32Array data = Napi::Float32Array::New(env, tensor.data.size());
      std::copy(tensor.data.begin(), tensor.data.end(), data.Data());
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("shape", shape);
      entry.Set("data", data);
      stages.Set(name, entry);
    }
    return stages;
  }

  std::shared_ptr<ProjectorState> state_;
  bool video_;
  std::vector<int64_t> shape_;
  Napi::Reference<Napi::Float32Array> input_, output_;
  const float* input_data_;
  float* output_data_;
  std::shared_ptr<vl::AbortFlag> abort_;
  Napi::FunctionReference on_progress_;
  EncodeParams params_;
  EncodeResult result_;
};

Napi::Function AddonProjector::Define(Napi::Env env) {
  return DefineClass(env, "AddonProjector",
                     {InstanceMethod<&AddonProjector::Load>("load"), InstanceMethod<&AddonProjector::Info>("info"),
                      InstanceMethod<&AddonProjector::EncodeVideo>("encodeVideo"),
                      InstanceMethod<&AddonProjector::EncodeAudio>("encodeAudio"),
                      InstanceMethod<&AddonProjector::ComputeBytes>("computeBytes"),
                      InstanceMethod<&AddonProjector::Dispose>("dispose")});
}

AddonProjector::AddonProjector(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonProjector>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "new AddonProjector(path: string, options?)");
  path_ = info[0].As<Napi::String>();
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object options = info[1].As<Napi::Object>();
    if (options.Get("threads").IsNumber()) options_.threads = options.Get("threads").As<Napi::Number>().Int32Value();
    options_.gpu = gpu_choice_from(options.Get("gpu"));
  }
}

std::shared_ptr<ProjectorState> AddonProjector::Loaded(Napi::Env env) const {
  if (disposed_) throw coded_error(env, "DISPOSED", "the projector was disposed");
  if (!state_) throw coded_error(env, "NATIVE", "the projector is not loaded yet");
  return state_;
}

Napi::Value AddonProjector::Load(const Napi::CallbackInfo& info) {
  if (disposed_) throw coded_error(info.Env(), "DISPOSED", "the projector was disposed");
  return queue_worker(new LoadWorker(info.Env(), this, JobOptions::From(info[0])));
}

Napi::Value AddonProjector::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ProjectorInfo& p = Loaded(env)->model().info();
  Napi::Object out = Napi::Object::New(env);
#define VL_INFO_TO_JS(type, name, js) out.Set(#js, to_js(env, p.name));
  VL_PROJECTOR_INFO_FIELDS(VL_INFO_TO_JS)
#undef VL_INFO_TO_JS
  return out;
}

Napi::Value AddonProjector::ComputeBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Loaded(info.Env())->compute_bytes()));
}

Napi::Value AddonProjector::Encode(const Napi::CallbackInfo& info, Modality modality) {
  Napi::Env env = info.Env();
  std::shared_ptr<ProjectorState> state = Loaded(env);
  if (info.Length() < 2 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "encode(tensor: Float32Array, shape: number[], options?)");
  }
  Napi::Float32Array tensor = info[0].As<Napi::Float32Array>();
  Napi::Array shape_array = info[1].As<Napi::Array>();
  std::vector<int64_t> shape;
  size_t elements = 1;
  for (uint32_t i = 0; i < shape_array.Length(); ++i) {
    const int64_t d = shape_array.Get(i).As<Napi::Number>().Int64Value();
    shape.push_back(d);
    elements *= static_cast<size_t>(std::max<int64_t>(d, 0));
  }
  if (elements != tensor.ElementLength()) {
    throw coded_error(env, "INVALID_ARGUMENT", "the tensor has " + std::to_string(tensor.ElementLength()) +
                                                   " elements but its shape has " + std::to_string(elements));
  }
  const bool video = modality == Modality::Video;
  const size_t output_size = video ? state->video_output_size() : state->audio_output_size();
  auto* worker = new EncodeWorker(env, state, video, tensor, std::move(shape), output_size);
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object options = info[2].As<Napi::Object>();
    try {
      worker->SetOptions(options.Get("stages").ToBoolean(), JobOptions::From(options));
    } catch (...) {
      delete worker;
      throw;
    }
  }
  return queue_worker(worker);
}

void AddonProjector::Dispose(const Napi::CallbackInfo&) {
  disposed_ = true;
  state_.reset();  // running encodes keep their own reference until they finish
}

void export_projector(Napi::Env env, Napi::Object exports) {
  exports.Set("AddonProjector", AddonProjector::Define(env));
  Napi::Array fields = Napi::Array::New(env);
#define VL_INFO_NAME(type, name, js) fields.Set(fields.Length(), #js);
  VL_PROJECTOR_INFO_FIELDS(VL_INFO_NAME)
#undef VL_INFO_NAME
  exports.Set("projectorInfoFields", fields);
}

}  // namespace vl::addon
