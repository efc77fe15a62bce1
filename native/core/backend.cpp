#include "core/backend.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

#include "llama.h"

namespace vl {

// VIDEO_LLAMA_CPU_ISA=avx2 (kernels/cpu_isa.h) when the addon loads: ggml's AVX2 CPU variant
// (haswell) instead of the best one, and no GPU backend, so that an AVX-512 machine computes like
// an AVX2-only one (for tests and benchmarks). Returns whether it loaded it.
static bool load_avx2_cpu_backend() {
  const char* cap = std::getenv("VIDEO_LLAMA_CPU_ISA");
  if (!cap || std::strcmp(cap, "avx2") != 0) return false;
  const std::string file = std::string(VIDEO_LLAMA_BACKEND_DIR) + "/libggml-cpu-haswell.so";
  return std::filesystem::exists(file) && ggml_backend_load(file.c_str()) != nullptr;
}

void ensure_backends_loaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!load_avx2_cpu_backend()) ggml_backend_load_all_from_path(VIDEO_LLAMA_BACKEND_DIR);
    llama_backend_init();
  });
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
