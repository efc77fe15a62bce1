// AddonProjector: the projector (native/core/projector.h) for JavaScript.
//   new AddonProjector(path, { threads?, gpu? }) (gpu: see gpu_choice.h); load(): Promise<void>; info(): ProjectorInfo
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
#include "addon/registry.h"
#include "core/projector.h"

namespace vl::addon {

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

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, AddonProjector* owner) : PromiseWorker(env), owner_(owner) { owner_->Ref(); }
  ~LoadWorker() override { owner_->Unref(); }

 protected:
  void Run() override {
    state_ = std::make_shared<ProjectorState>(ProjectorModel::load(owner_->path_, owner_->options_));
  }
  Napi::Value Result(Napi::Env env) override {
    if (!owner_->disposed_) owner_->state_ = std::move(state_);
    return env.Undefined();
  }

 private:
  AddonProjector* owner_;
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

  void SetOptions(bool collect_stages, std::shared_ptr<std::atomic<bool>> abort, Napi::Function on_progress) {
    params_.collect_stages = collect_stages;
    abort_ = std::move(abort);
    params_.abort = abort_.get();
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
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
  std::shared_ptr<std::atomic<bool>> abort_;
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
  auto* worker = new LoadWorker(info.Env(), this);
  worker->Queue();
  return worker->Promise();
}

Napi::Value AddonProjector::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ProjectorInfo& p = Loaded(env)->model().info();
  auto triple = [&env](const std::array<float, 3>& v) {
    Napi::Array a = Napi::Array::New(env, 3);
    for (uint32_t i = 0; i < 3; ++i) a.Set(i, v[i]);
    return a;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("llmWidth", p.llm_width);
  out.Set("fileType", p.file_type);
  out.Set("hasVision", p.has_vision);
  out.Set("hasAudio", p.has_audio);
  out.Set("imageSize", p.image_size);
  out.Set("videoQueries", p.video_queries);
  out.Set("maxFrames", p.max_frames);
  out.Set("imageMean", triple(p.image_mean));
  out.Set("imageStd", triple(p.image_std));
  out.Set("audioQueries", p.audio_queries);
  out.Set("maxClips", p.max_clips);
  out.Set("sampleRate", p.sample_rate);
  out.Set("melBins", p.mel_bins);
  out.Set("targetFrames", p.target_frames);
  out.Set("clipSeconds", p.clip_seconds);
  out.Set("fbankMean", p.fbank_mean);
  out.Set("fbankStd", p.fbank_std);
  out.Set("backend", p.backend);
  out.Set("ownKernelLayers", p.own_kernel_layers);
  out.Set("weightBytes", static_cast<double>(p.weight_bytes));
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
    Napi::Value on_progress = options.Get("onProgress");
    try {
      worker->SetOptions(options.Get("stages").ToBoolean(), AbortFlag::From(options.Get("abort")),
                         on_progress.IsFunction() ? on_progress.As<Napi::Function>() : Napi::Function());
    } catch (...) {
      delete worker;
      throw;
    }
  }
  worker->Queue();
  return worker->Promise();
}

void AddonProjector::Dispose(const Napi::CallbackInfo&) {
  disposed_ = true;
  state_.reset();  // running encodes keep their own reference until they finish
}

static AddonRegistration registration([](Napi::Env env, Napi::Object exports) {
  exports.Set("AddonProjector", AddonProjector::Define(env));
});

}  // namespace vl::addon
