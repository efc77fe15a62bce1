#pragma once
// AddonModel: a language model (native/core/llm_model.h) for JavaScript. src/bindings/model.ts
// declares its TypeScript type.
//   new AddonModel(path, { gpuLayers?, mmap?, gpu? })              (gpu: see gpu_choice.h)
//   load({ abort?, onProgress?(fraction) }): Promise<void>   ABORTED frees what was loaded
//   info(): { embeddingWidth, vocabularySize, trainContextSize, layers, addsBos, description, chatTemplate }
//   tokenize(text, addBos, parseSpecial): Int32Array         fast enough for the JS thread
//   detokenize(tokens: Int32Array, renderSpecial): string
//   tokenEmbeddings(tokens: Int32Array): Promise<Float32Array>   [n_embd, n] in ggml order
//   dispose()                                                contexts keep the weights alive
#include <napi.h>

#include <memory>

#include "core/llm_model.h"

namespace vl::addon {

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonModel(const Napi::CallbackInfo& info);

  // The loaded model; throws DISPOSED / NATIVE (not loaded) for JS.
  std::shared_ptr<vl::llm::Model> Get(Napi::Env env) const;

 private:
  friend class ModelLoadWorker;
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Tokenize(const Napi::CallbackInfo& info);
  Napi::Value Detokenize(const Napi::CallbackInfo& info);
  Napi::Value TokenEmbeddings(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);

  vl::llm::ModelParams params_;
  std::shared_ptr<vl::llm::Model> model_;
  bool loading_ = false;
  bool disposed_ = false;
};

}  // namespace vl::addon
