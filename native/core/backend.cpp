#include "core/backend.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/error.h"
#include "llama.h"

namespace vl {

// The folder of the libggml this process loaded (through the addon's $ORIGIN-relative RUNPATH):
// the CPU backend variants lie beside it. Asking the loader, rather than compiling the folder in,
// keeps a moved installation working.
static std::string linked_ggml_dir() {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&ggml_backend_load_all_from_path), &info) || !info.dli_fname) {
    throw Error("NATIVE", "could not find where libggml was loaded from");
  }
  const std::string file = info.dli_fname;
  const size_t slash = file.find_last_of('/');
  return slash == std::string::npos ? "." : file.substr(0, slash);
}

// Guards the loading of GPU backends (the registry is a plain vector in libggml).
static std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

// VIDEO_LLAMA_CPU_ISA=avx2 or avxvnni (kernels/cpu_isa.h) when the addon loads: ggml's CPU variant
// of that level (haswell: AVX2; alderlake: AVX2 + AVX-VNNI) instead of the best one, so that an
// AVX-512 machine computes like an AVX2-only one (for tests and benchmarks). Returns whether it
// loaded it.
static bool load_avx2_cpu_backend(const std::string& dir) {
  const char* cap = std::getenv("VIDEO_LLAMA_CPU_ISA");
  if (!cap || (std::strcmp(cap, "avx2") != 0 && std::strcmp(cap, "avxvnni") != 0)) return false;
  const std::string file = dir + (std::strcmp(cap, "avx2") == 0 ? "/libggml-cpu-haswell.so" : "/libggml-cpu-alderlake.so");
  return std::filesystem::exists(file) && ggml_backend_load(file.c_str()) != nullptr;
}

void ensure_backends_loaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::lock_guard<std::mutex> lock(registry_mutex());
    const std::string dir = linked_ggml_dir();
    if (!load_avx2_cpu_backend(dir)) ggml_backend_load_all_from_path(dir.c_str());
    llama_backend_init();
  });
}

static ggml_backend_dev_t first_gpu_device(ggml_backend_reg_t reg) {
  for (size_t i = 0; i < ggml_backend_reg_dev_count(reg); ++i) {
    ggml_backend_dev_t dev = ggml_backend_reg_dev_get(reg, i);
    const enum ggml_backend_dev_type type = ggml_backend_dev_type(dev);
    if (type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) return dev;
  }
  return nullptr;
}

// Whether the dynamic loader can load `library` with its dependencies (a GPU backend needs the
// driver's libraries, e.g. libcuda.so.1): tried here first so that ggml_backend_load, which logs
// its failures as errors, only sees libraries that load. Otherwise `why` says what is missing.
static bool loadable(const std::string& library, std::string& why) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* error = dlerror();
    why = error ? error : library + " could not be loaded";
    return false;
  }
  dlclose(handle);
  return true;
}

// The registered backend of `candidate`, loading the first of its libraries that loads; nullptr
// with `why` set when none does. A library that failed is not tried again.
static ggml_backend_reg_t load_backend(const GpuCandidate& candidate, std::string& why) {
  if (ggml_backend_reg_t reg = ggml_backend_reg_by_name(candidate.backend.c_str())) return reg;
  static std::map<std::string, std::string> failed;  // library -> why
  why = candidate.libraries.empty() ? "no library provides it" : "";
  for (const std::string& library : candidate.libraries) {
    auto previous = failed.find(library);
    if (previous != failed.end()) {
      why = previous->second;
      continue;
    }
    ggml_backend_reg_t reg = loadable(library, why) ? ggml_backend_load(library.c_str()) : nullptr;
    if (reg && candidate.backend == ggml_backend_reg_name(reg)) return reg;
    if (reg) ggml_backend_unload(reg);
    if (why.empty()) why = library + " does not provide it";
    failed.emplace(library, why);
  }
  return nullptr;
}

ggml_backend_dev_t choose_gpu(const GpuChoice& choice) {
  ensure_backends_loaded();
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (const GpuCandidate& candidate : choice.candidates) {
    std::string why;
    ggml_backend_reg_t reg = load_backend(candidate, why);
    ggml_backend_dev_t dev = reg ? first_gpu_device(reg) : nullptr;
    if (dev) return dev;
    if (reg) why = "it found no GPU device";
    if (choice.required) throw Error("GPU_UNAVAILABLE", "the " + candidate.backend + " backend cannot be used: " + why);
  }
  return nullptr;
}

void set_backend_threads(ggml_backend_t backend, int n_threads) {
  ggml_backend_dev_t dev = ggml_backend_get_device(backend);
  ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : nullptr;
  if (!reg) return;
  auto set_n_threads = reinterpret_cast<ggml_backend_set_n_threads_t>(
      ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads"));
  if (set_n_threads) set_n_threads(backend, n_threads);
}

void set_backend_abort_callback(ggml_backend_t backend, ggml_abort_callback callback, void* data) {
  ggml_backend_dev_t dev = ggml_backend_get_device(backend);
  ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : nullptr;
  if (!reg) return;
  auto set_abort = reinterpret_cast<ggml_backend_set_abort_callback_t>(
      ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_abort_callback"));
  if (set_abort) set_abort(backend, callback, data);
}

std::string describe_devices() {
  ensure_backends_loaded();
  std::string out;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (!out.empty()) out += ", ";
    out += std::string(ggml_backend_dev_name(dev)) + " (" + ggml_backend_dev_description(dev) + ")";
  }
  return out;
}

}  // namespace vl
