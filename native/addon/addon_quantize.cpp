// quantize(data: Float32Array, rowLength: number, type: string): Uint8Array
// Converts f32 rows to a ggml type (f16, bf16, q8_0, q4_0, ...) with ggml's own functions;
// used by the GGUF writers (converter, test-model generator).
#include <napi.h>

#include <cstring>
#include <string>

#include "addon/exports.h"
#include "ggml.h"

namespace vl::addon {

static ggml_type type_by_name(const std::string& name) {
  for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
    const char* tn = ggml_type_name(static_cast<ggml_type>(t));
    if (tn && name == tn && ggml_blck_size(static_cast<ggml_type>(t)) > 0) return static_cast<ggml_type>(t);
  }
  return GGML_TYPE_COUNT;
}

static Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsString()) {
    throw Napi::TypeError::New(env, "quantize(data: Float32Array, rowLength: number, type: string)");
  }
  auto data = info[0].As<Napi::Float32Array>();
  const int64_t row_len = info[1].As<Napi::Number>().Int64Value();
  const std::string type_name = info[2].As<Napi::String>();
  const ggml_type type = type_by_name(type_name);
  if (type == GGML_TYPE_COUNT) throw Napi::TypeError::New(env, "unknown ggml type '" + type_name + "'");
  if (row_len <= 0 || data.ElementLength() % row_len != 0) {
    throw Napi::RangeError::New(env, "data length " + std::to_string(data.ElementLength()) +
                                         " is not a multiple of the row length " + std::to_string(row_len));
  }
  if (row_len % ggml_blck_size(type) != 0) {
    throw Napi::RangeError::New(env, "row length " + std::to_string(row_len) + " is not a multiple of " +
                                         type_name + "'s block size " + std::to_string(ggml_blck_size(type)));
  }
  if (ggml_quantize_requires_imatrix(type)) {
    throw Napi::TypeError::New(env, "type '" + type_name + "' needs an importance matrix");
  }
  const int64_t rows = static_cast<int64_t>(data.ElementLength()) / row_len;
  auto out = Napi::Uint8Array::New(env, ggml_row_size(type, row_len) * rows);
  if (type == GGML_TYPE_F32) {
    std::memcpy(out.Data(), data.Data(), out.ByteLength());
  } else {
    ggml_quantize_chunk(type, data.Data(), out.Data(), 0, rows, row_len, nullptr);
  }
  return out;
}

void export_quantize(Napi::Env env, Napi::Object exports) {
  exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
}

}  // namespace vl::addon
