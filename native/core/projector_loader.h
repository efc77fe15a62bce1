#pragma once
// Reading a projector GGUF (docs/projector-format.md): typed metadata getters that throw
// "Key not found: <key>", tensors declared with the shape the graph expects, and one pass that
// loads exactly the declared tensors into a single backend buffer.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml.h"
#include "gguf.h"

namespace vl {

// What storage types a declared tensor may have.
enum class TensorKind {
  F32,     // norms, biases, tokens, embeddings: always f32
  Float,   // convolution kernels: f32, f16 or bf16
  Matrix,  // linear weights: f32, f16, bf16 or any quantized type (used as mul_mat's src0)
};

class ProjectorLoader {
 public:
  // Opens `path` and checks it is a projector (general.architecture). Throws vl::Error:
  // FILE_NOT_FOUND, INVALID_MODEL (not a GGUF, another architecture, truncated).
  explicit ProjectorLoader(const std::string& path);
  ProjectorLoader(const ProjectorLoader&) = delete;
  ProjectorLoader& operator=(const ProjectorLoader&) = delete;

  bool has_key(const std::string& key) const;
  uint32_t u32(const std::string& key) const;
  // A finite f32 (NaN and infinities are INVALID_MODEL).
  float f32(const std::string& key) const;
  // A LayerNorm epsilon: finite and >= 0.
  float eps(const std::string& key) const;
  // A u32 used as a size: 1 ≤ value ≤ 2^24 (so that products of sizes fit), else INVALID_MODEL.
  int size(const std::string& key) const;
  // A u32 used as a layer count: min ≤ value ≤ 4096.
  int count(const std::string& key, uint32_t min = 0) const;
  bool boolean(const std::string& key) const;
  std::string string(const std::string& key) const;
  std::vector<float> f32_array(const std::string& key, size_t expected_length) const;

  // Declares a tensor the graphs use; its shape (ggml order) must match the file exactly.
  // Throws MISSING_TENSOR, TENSOR_SHAPE (shape) or INVALID_MODEL (storage type). The returned
  // tensor lives in the weights context and holds data once load() has run.
  ggml_tensor* tensor(const std::string& name, std::initializer_list<int64_t> shape, TensorKind kind);

  // Allocates every declared tensor in one buffer of `backend` and reads its data from the file,
  // reporting the fraction read to `on_progress` (if any) and stopping with ABORTED when `abort`
  // is set. Hands over the context and the buffer (the weights of the model).
  void load(ggml_backend_t backend, ggml_context_ptr& weights_ctx, ggml_backend_buffer_ptr& weights_buffer,
            const AbortFlag* abort = nullptr, const std::function<void(float)>& on_progress = {});

 private:
  std::string path_;
  gguf_context_ptr gguf_;
  ggml_context_ptr meta_ctx_;     // the file's tensors, shapes only (no data)
  ggml_context_ptr weights_ctx_;
  uint64_t file_size_ = 0;
  std::vector<std::pair<ggml_tensor*, int64_t>> declared_;  // weight tensor, its id in the GGUF

  int64_t key_of_type(const std::string& key, gguf_type type) const;
};

// `[a, b, c]`, the way shapes appear in error messages.
std::string format_shape(const int64_t* ne, int n_dims);

}  // namespace vl
