// The benchmark addon (video_llama_bench.node, built by `npm run bench` only): the bindings of
// native/core/bench, for bench/; not part of the library's addon or its API.
//   benchPeak(kind: string, threads: number, seconds: number): { wall, cpu }      FLOP per wall / CPU second
//   benchMatmul({ m, k, n, type, isa?, threads, reps }): { wall, cpu }            best seconds of each
//     (isa "avx512" or "avx2": our kernel of that instruction set; absent: ggml_mul_mat)
#include <napi.h>

#include <string>

#include "core/backend.h"
#include "core/bench/microbench.h"
#include "core/error.h"

namespace vl::addon {

static Napi::Object wall_and_cpu(Napi::Env env, double wall, double cpu) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("wall", wall);
  o.Set("cpu", cpu);
  return o;
}

static Napi::Value BenchPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "benchPeak(kind: string, threads: number, seconds: number)");
  }
  const bench::Rate rate = bench::peak_flops(info[0].As<Napi::String>(), info[1].As<Napi::Number>().Int32Value(),
                                             info[2].As<Napi::Number>().DoubleValue());
  return wall_and_cpu(env, rate.per_wall_second, rate.per_cpu_second);
}

static ggml_type type_named(Napi::Env env, const std::string& name) {
  for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
    const char* tn = ggml_type_name(static_cast<ggml_type>(t));
    if (tn && name == tn && ggml_blck_size(static_cast<ggml_type>(t)) > 0) return static_cast<ggml_type>(t);
  }
  throw Napi::TypeError::New(env, "unknown ggml type '" + name + "'");
}

static Napi::Value BenchMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "benchMatmul(options: object)");
  Napi::Object o = info[0].As<Napi::Object>();
  const auto int_of = [&](const char* key) { return o.Get(key).As<Napi::Number>().Int64Value(); };
  bench::MatmulCase c;
  c.m = int_of("m");
  c.k = int_of("k");
  c.n = int_of("n");
  c.type = type_named(env, o.Get("type").As<Napi::String>());
  if (o.Has("isa") && o.Get("isa").IsString()) c.isa = o.Get("isa").As<Napi::String>().Utf8Value();
  c.threads = static_cast<int>(int_of("threads"));
  c.reps = static_cast<int>(int_of("reps"));
  if (c.m <= 0 || c.k <= 0 || c.n <= 0 || c.k % ggml_blck_size(c.type) != 0 || c.threads <= 0) {
    throw Napi::RangeError::New(env, "benchMatmul: sizes must be positive, k a multiple of the type's block size");
  }
  try {
    const bench::MatmulTimes t = bench::matmul_seconds(c);
    return wall_and_cpu(env, t.wall_seconds, t.cpu_seconds);
  } catch (const Error& e) {
    throw Napi::Error::New(env, e.what());
  }
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ensure_backends_loaded();
  exports.Set("benchPeak", Napi::Function::New(env, BenchPeak, "benchPeak"));
  exports.Set("benchMatmul", Napi::Function::New(env, BenchMatmul, "benchMatmul"));
  return exports;
}

NODE_API_MODULE(video_llama_bench, Init)

}  // namespace vl::addon
