#pragma once
// Token id arrays between JavaScript (Int32Array) and libllama (std::vector<llama_token>).
#include <napi.h>

#include <algorithm>
#include <vector>

#include "llama.h"

namespace vl::addon {

inline std::vector<llama_token> token_array(const Napi::Value& value) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(value.Env(), "expected an Int32Array of token ids");
  }
  auto array = value.As<Napi::Int32Array>();
  return std::vector<llama_token>(array.Data(), array.Data() + array.ElementLength());
}

inline Napi::Int32Array to_int32_array(Napi::Env env, const std::vector<llama_token>& tokens) {
  auto out = Napi::Int32Array::New(env, tokens.size());
  std::copy(tokens.begin(), tokens.end(), out.Data());
  return out;
}

}  // namespace vl::addon
