#pragma once
// The CPU run of a training graph: a no_alloc graph context, and a CPU backend with its allocator.
#include <algorithm>

#include "core/backend.h"
#include "core/error.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"

namespace vl::train {

// A graph context sized for the LLaMA graph and its backward, and up to three graphs of its nodes
// (tensors only: data lives in the allocator's buffer).
struct GraphScratch {
  static constexpr size_t kMaxNodes = 16384;
  ggml_context* ctx;
  GraphScratch()
      : ctx(ggml_init({ggml_tensor_overhead() * kMaxNodes * 3 + 3 * ggml_graph_overhead_custom(kMaxNodes, true),
                       nullptr, /*no_alloc=*/true})) {}
  ~GraphScratch() { ggml_free(ctx); }
};

// A CPU backend and the allocator of one graph; computes it with `threads`, stopping on `abort`.
class CpuRun {
 public:
  CpuRun(int threads, const AbortFlag* abort)
      : backend_(ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr)),
        alloc_(ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_))) {
    set_backend_threads(backend_, std::max(1, threads));
    set_backend_abort_callback(backend_, abort_callback, const_cast<AbortFlag*>(abort));
    abort_ = abort;
  }
  ~CpuRun() {
    ggml_gallocr_free(alloc_);
    ggml_backend_free(backend_);
  }
  void allocate(ggml_cgraph* graph) {
    if (!ggml_gallocr_alloc_graph(alloc_, graph)) throw Error("NATIVE", "Could not allocate the training graph");
  }
  void compute(ggml_cgraph* graph) {
    const ggml_status status = ggml_backend_graph_compute(backend_, graph);
    if (is_aborted(abort_)) throw Error("ABORTED", "Training computation aborted");
    if (status != GGML_STATUS_SUCCESS) throw Error("NATIVE", "The training graph failed to compute");
  }

 private:
  ggml_backend_t backend_;
  ggml_gallocr_t alloc_;
  const AbortFlag* abort_ = nullptr;
};

}  // namespace vl::train
