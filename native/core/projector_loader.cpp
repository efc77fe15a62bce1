#include "core/projector_loader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/gguf_names.h"
#include "ggml-alloc.h"

namespace vl {

std::string format_shape(const int64_t* ne, int n_dims) {
  std::string out = "[";
  for (int i = 0; i < n_dims; ++i) out += (i ? ", " : "") + std::to_string(ne[i]);
  return out + "]";
}

ProjectorLoader::ProjectorLoader(const std::string& path) : path_(path) {
  std::error_code ec;
  file_size_ = std::filesystem::file_size(path, ec);
  if (ec) throw Error("FILE_NOT_FOUND", "cannot read the projector file '" + path + "': " + ec.message());

  ggml_context* meta = nullptr;
  gguf_.reset(gguf_init_from_file(path.c_str(), {/*no_alloc=*/true, /*ctx=*/&meta}));
  meta_ctx_.reset(meta);
  if (!gguf_) throw Error("INVALID_MODEL", "'" + path + "' is not a valid GGUF file (bad header or truncated)");

  const std::string arch = has_key(KEY_ARCHITECTURE) ? string(KEY_ARCHITECTURE) : "(none)";
  if (arch != PROJECTOR_ARCHITECTURE) {
    throw Error("INVALID_MODEL", "'" + path + "' is not a Video-LLaMA projector: " + KEY_ARCHITECTURE + " is '" + arch +
                                     "', expected '" + PROJECTOR_ARCHITECTURE + "'");
  }

  // A truncated file still parses (the header is intact), so compare every tensor's extent with the size.
  const size_t data_offset = gguf_get_data_offset(gguf_.get());
  const int64_t n_tensors = gguf_get_n_tensors(gguf_.get());
  for (int64_t i = 0; i < n_tensors; ++i) {
    const uint64_t end = data_offset + gguf_get_tensor_offset(gguf_.get(), i) + gguf_get_tensor_size(gguf_.get(), i);
    if (end > file_size_) {
      throw Error("INVALID_MODEL", "'" + path + "' is truncated: tensor '" + gguf_get_tensor_name(gguf_.get(), i) +
                                       "' ends at byte " + std::to_string(end) + " but the file has " +
                                       std::to_string(file_size_) + " bytes");
    }
  }

  ggml_init_params params = {ggml_tensor_overhead() * static_cast<size_t>(n_tensors + 1), nullptr, /*no_alloc=*/true};
  weights_ctx_.reset(ggml_init(params));
  if (!weights_ctx_) throw Error("NATIVE", "could not create the weights context");
}

bool ProjectorLoader::has_key(const std::string& key) const { return gguf_find_key(gguf_.get(), key.c_str()) >= 0; }

int64_t ProjectorLoader::key_of_type(const std::string& key, gguf_type type) const {
  const int64_t id = gguf_find_key(gguf_.get(), key.c_str());
  if (id < 0) throw Error("INVALID_MODEL", "Key not found: " + key);
  const gguf_type found = gguf_get_kv_type(gguf_.get(), id);
  if (found != type) {
    throw Error("INVALID_MODEL", "key '" + key + "' has type " + gguf_type_name(found) + ", expected " +
                                     gguf_type_name(type));
  }
  return id;
}

uint32_t ProjectorLoader::u32(const std::string& key) const {
  return gguf_get_val_u32(gguf_.get(), key_of_type(key, GGUF_TYPE_UINT32));
}

static int bounded(const std::string& key, uint32_t value, uint32_t min, uint32_t max) {
  if (value < min || value > max) {
    throw Error("INVALID_MODEL", "key '" + key + "' is " + std::to_string(value) + ", expected " + std::to_string(min) +
                                     ".." + std::to_string(max));
  }
  return static_cast<int>(value);
}

int ProjectorLoader::size(const std::string& key) const { return bounded(key, u32(key), 1, 1u << 24); }

int ProjectorLoader::count(const std::string& key, uint32_t min) const { return bounded(key, u32(key), min, 4096); }

float ProjectorLoader::f32(const std::string& key) const {
  const float value = gguf_get_val_f32(gguf_.get(), key_of_type(key, GGUF_TYPE_FLOAT32));
  if (!std::isfinite(value)) throw Error("INVALID_MODEL", "key '" + key + "' is " + std::to_string(value) + ", expected a finite number");
  return value;
}

float ProjectorLoader::eps(const std::string& key) const {
  const float value = f32(key);
  // ggml's norm ops assert a non-negative epsilon: a bad file must fail here, not abort there.
  if (value < 0) throw Error("INVALID_MODEL", "key '" + key + "' is " + std::to_string(value) + ", expected an epsilon >= 0");
  return value;
}

bool ProjectorLoader::boolean(const std::string& key) const {
  return gguf_get_val_bool(gguf_.get(), key_of_type(key, GGUF_TYPE_BOOL));
}

std::string ProjectorLoader::string(const std::string& key) const {
  return gguf_get_val_str(gguf_.get(), key_of_type(key, GGUF_TYPE_STRING));
}

std::vector<float> ProjectorLoader::f32_array(const std::string& key, size_t expected_length) const {
  const int64_t id = key_of_type(key, GGUF_TYPE_ARRAY);
  const gguf_type element = gguf_get_arr_type(gguf_.get(), id);
  const size_t n = gguf_get_arr_n(gguf_.get(), id);
  if (element != GGUF_TYPE_FLOAT32 || n != expected_length) {
    throw Error("INVALID_MODEL", "key '" + key + "' is an array of " + std::to_string(n) + " " +
                                     gguf_type_name(element) + ", expected " + std::to_string(expected_length) +
                                     " f32");
  }
  const float* data = static_cast<const float*>(gguf_get_arr_data(gguf_.get(), id));
  return std::vector<float>(data, data + n);
}

static bool kind_allows(TensorKind kind, ggml_type type) {
  switch (kind) {
    case TensorKind::F32:
      return type == GGML_TYPE_F32;
    case TensorKind::Float:
      return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16;
    case TensorKind::Matrix:
      return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16 || ggml_is_quantized(type);
  }
  return false;
}

static const char* kind_name(TensorKind kind) {
  switch (kind) {
    case TensorKind::F32: return "f32";
    case TensorKind::Float: return "f32, f16 or bf16";
    case TensorKind::Matrix: return "f32, f16, bf16 or a quantized type";
  }
  return "?";
}

ggml_tensor* ProjectorLoader::tensor(const std::string& name, std::initializer_list<int64_t> shape, TensorKind kind) {
  const int64_t id = gguf_find_tensor(gguf_.get(), name.c_str());
  if (id < 0) throw Error("MISSING_TENSOR", "tensor '" + name + "' is missing from '" + path_ + "'");

  const ggml_type type = gguf_get_tensor_type(gguf_.get(), id);
  int64_t expected[GGML_MAX_DIMS] = {1, 1, 1, 1};
  int n_expected = 0;
  for (int64_t d : shape) expected[n_expected++] = d;

  ggml_tensor* meta = ggml_get_tensor(meta_ctx_.get(), name.c_str());
  bool same = true;
  for (int i = 0; i < GGML_MAX_DIMS; ++i) same = same && meta->ne[i] == expected[i];
  if (!same) {
    throw Error("TENSOR_SHAPE", "tensor '" + name + "' has wrong shape; expected " + format_shape(expected, n_expected) +
                                    ", got " + format_shape(meta->ne, std::max(ggml_n_dims(meta), n_expected)));
  }
  if (!kind_allows(kind, type)) {
    throw Error("INVALID_MODEL", "tensor '" + name + "' has type " + ggml_type_name(type) + ", expected " +
                                     kind_name(kind));
  }
  ggml_tensor* weight = ggml_dup_tensor(weights_ctx_.get(), meta);
  ggml_set_name(weight, name.c_str());
  declared_.emplace_back(weight, id);
  return weight;
}

// The first element of `count` floats (stored as `Bits`) that is NaN or infinite, or -1: all
// exponent bits set means non-finite in f32, f16 and bf16 alike. The first pass has no branch
// and vectorises (~0.5 s for the release's 2.4 GB of f16, next to ~85 s for the whole load;
// docs/usage.md); only data that fails it is searched again for the index to report.
template <typename Bits>
static int64_t first_non_finite(const void* data, size_t count, Bits exponent) {
  const Bits* bits = static_cast<const Bits*>(data);
  Bits any = 0;
  for (size_t i = 0; i < count; ++i) any |= static_cast<Bits>((bits[i] & exponent) == exponent);
  if (!any) return -1;
  for (size_t i = 0; i < count; ++i) {
    if ((bits[i] & exponent) == exponent) return static_cast<int64_t>(i);
  }
  return -1;
}

// first_non_finite for a weight's data; quantized types are not scanned (their blocks' f16
// scales are a small part, and a corrupt one shows as a wrong output, not a silent NaN).
static int64_t first_non_finite(const ggml_tensor* weight, const void* data) {
  const size_t count = static_cast<size_t>(ggml_nelements(weight));
  switch (weight->type) {
    case GGML_TYPE_F32: return first_non_finite<uint32_t>(data, count, 0x7f800000u);
    case GGML_TYPE_F16: return first_non_finite<uint16_t>(data, count, 0x7c00);
    case GGML_TYPE_BF16: return first_non_finite<uint16_t>(data, count, 0x7f80);
    default: return -1;
  }
}

}  // namespace vl

namespace vl {

void ProjectorLoader::load(ggml_backend_t backend, ggml_context_ptr& weights_ctx, ggml_backend_buffer_ptr& weights_buffer,
                           const AbortFlag* abort, const std::function<void(float)>& on_progress) {
  ggml_backend_buffer_ptr buffer(ggml_backend_alloc_ctx_tensors(weights_ctx_.get(), backend));
  if (!buffer) {
    size_t total = 0;
    for (const auto& declared : declared_) total += ggml_nbytes(declared.first);
    throw Error("NATIVE", "could not allocate " + std::to_string(total) + " bytes of weights on " +
                              ggml_backend_name(backend));
  }
  ggml_backend_buffer_set_usage(buffer.get(), GGML_BACKEND_BUFFER_USAGE_WEIGHTS);

  std::ifstream file(path_, std::ios::binary);
  if (!file) throw Error("FILE_NOT_FOUND", "cannot open the projector file '" + path_ + "'");
  const size_t data_offset = gguf_get_data_offset(gguf_.get());
  const bool host = ggml_backend_buffer_is_host(buffer.get());
  std::vector<uint8_t> staging;
  size_t total = 0, done = 0;
  for (const auto& declared : declared_) total += ggml_nbytes(declared.first);
  for (const auto& [weight, id] : declared_) {
    if (is_aborted(abort)) throw Error("ABORTED", "loading '" + path_ + "' was aborted");
    const size_t bytes = ggml_nbytes(weight);
    void* destination = weight->data;
    if (!host) {
      staging.resize(bytes);
      destination = staging.data();
    }
    const size_t offset = data_offset + gguf_get_tensor_offset(gguf_.get(), id);
    file.seekg(static_cast<std::streamoff>(offset));
    if (!file.read(static_cast<char*>(destination), static_cast<std::streamsize>(bytes))) {
      throw Error("INVALID_MODEL", "could not read tensor '" + std::string(ggml_get_name(weight)) + "' from '" + path_ +
                                       "' (truncated or unreadable)");
    }
    const int64_t bad = first_non_finite(weight, destination);
    if (bad >= 0) {
      throw Error("INVALID_MODEL", "tensor '" + std::string(ggml_get_name(weight)) + "' of '" + path_ + "' holds NaN or " +
                                       "infinity (element " + std::to_string(bad) + "): the file is corrupt");
    }
    if (!host) ggml_backend_tensor_set(weight, staging.data(), 0, bytes);
    done += bytes;
    if (on_progress) on_progress(done == total ? 1.0f : static_cast<float>(done) / static_cast<float>(total));
  }
  weights_ctx = std::move(weights_ctx_);
  weights_buffer = std::move(buffer);
}

}  // namespace vl
