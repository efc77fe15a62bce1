#pragma once
// Loading ggml's backends (prebuilt, dynamically loaded) and choosing the device our graphs and
// libllama run on.
#include <string>
#include <vector>

#include "ggml-backend.h"

namespace vl {

// Loads the CPU backend variants from the folder the linked libggml was loaded from (found at
// run time, so that a moved installation still finds them) and initialises libllama.
// Idempotent and thread-safe; must run before libllama or any graph of ours is used, since these
// libraries register no backend statically.
void ensure_backends_loaded();

// A GPU backend that may be used: its ggml registry name ("CUDA", "Vulkan", "Metal") and the
// libraries that provide it, tried in order (none when the linked libraries already hold it).
struct GpuCandidate {
  std::string backend;
  std::vector<std::string> libraries;
};

// The `gpu` load option, resolved to candidates by the TypeScript side (src/backends.ts).
struct GpuChoice {
  std::vector<GpuCandidate> candidates;  // empty: the CPU only
  bool required = false;                 // a named GPU: failing to get it is an error, not the CPU
};

// The GPU device a model uses: the first GPU device of the first candidate that loads and has
// one. nullptr means the CPU (no candidates, or none usable and not required). Loads a backend
// library at most once per process. Throws Error("GPU_UNAVAILABLE") when `required` and the
// candidate cannot be loaded or has no device.
ggml_backend_dev_t choose_gpu(const GpuChoice& choice);

// Sets the worker-thread count of a backend if it has one (the CPU backend does).
void set_backend_threads(ggml_backend_t backend, int n_threads);

// Sets the callback a backend polls between graph nodes to stop a computation early (the CPU
// backend supports it; others ignore it). `callback` null removes it.
void set_backend_abort_callback(ggml_backend_t backend, ggml_abort_callback callback, void* data);

// Human-readable names of the registered devices, e.g. "CPU (AMD EPYC)".
std::string describe_devices();

}  // namespace vl
