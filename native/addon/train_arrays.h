#pragma once
// Values between JavaScript and the training code: typed arrays, and gradient-check reports.
#include <napi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/train/gradient_check.h"

namespace vl::addon {

template <class T, class Array>
std::vector<T> to_vector(Napi::Value value, const char* what) {
  if (!value.IsTypedArray()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a typed array");
  Array array = value.As<Array>();
  return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

inline Napi::Float32Array to_array(Napi::Env env, const std::vector<float>& values) {
  auto out = Napi::Float32Array::New(env, values.size());
  std::copy(values.begin(), values.end(), out.Data());
  return out;
}

// { forwardError, tensors: [{ name, entries, maxAbsError, maxAbsGradient }] }
inline Napi::Object to_object(Napi::Env env, const vl::train::GradientCheckReport& report) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("forwardError", Napi::Number::New(env, report.forward_error));
  Napi::Array tensors = Napi::Array::New(env, report.tensors.size());
  for (size_t i = 0; i < report.tensors.size(); ++i) {
    const auto& c = report.tensors[i];
    Napi::Object t = Napi::Object::New(env);
    t.Set("name", c.name);
    t.Set("entries", Napi::Number::New(env, static_cast<double>(c.entries)));
    t.Set("maxAbsError", Napi::Number::New(env, c.max_abs_error));
    t.Set("maxAbsGradient", Napi::Number::New(env, c.max_abs_grad));
    tensors.Set(static_cast<uint32_t>(i), t);
  }
  out.Set("tensors", tensors);
  return out;
}

}  // namespace vl::addon
