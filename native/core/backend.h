#pragma once
// Loading ggml's backends (prebuilt, dynamically loaded) and choosing one for our graphs.
#include <string>

#include "ggml-backend.h"

namespace vl {

// Loads every backend library (CPU variants, CUDA, Vulkan, Metal) from the folder of the
// prebuilt llama.cpp libraries. Idempotent and thread-safe; must run before libllama or
// any graph of ours is used, since these libraries register no backend statically.
void ensure_backends_loaded();

// Sets the worker-thread count of a backend if it has one (the CPU backend does).
void set_backend_threads(ggml_backend_t backend, int n_threads);

// Sets the callback a backend polls between graph nodes to stop a computation early (the CPU
// backend supports it; others ignore it). `callback` null removes it.
void set_backend_abort_callback(ggml_backend_t backend, ggml_abort_callback callback, void* data);

// Human-readable names of the registered devices, e.g. "CPU (AMD EPYC)".
std::string describe_devices();

}  // namespace vl
