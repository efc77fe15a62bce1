#pragma once
// What each addon file adds to the module's exports; module.cpp calls them in one explicit list.
// (The benchmark addon, addon_bench.cpp, is a module of its own.)
#include <napi.h>

namespace vl::addon {

void export_abort_flag(Napi::Env env, Napi::Object exports);  // AbortFlag
void export_model(Napi::Env env, Napi::Object exports);       // AddonModel
void export_context(Napi::Env env, Napi::Object exports);     // AddonContext
void export_projector(Napi::Env env, Napi::Object exports);   // AddonProjector, projectorInfoFields
void export_gguf_names(Napi::Env env, Napi::Object exports);  // ggufNames
void export_quantize(Napi::Env env, Napi::Object exports);    // quantize
void export_train(Napi::Env env, Napi::Object exports);       // AddonTrainLlama
void export_train_branch(Napi::Env env, Napi::Object exports);  // AddonBranchTrainer
void export_llama_trainer(Napi::Env env, Napi::Object exports);  // AddonLlamaTrainer

}  // namespace vl::addon
