#include "core/bench/microbench.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <ctime>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/graph/common.h"
#include "core/kernels/cpu_isa.h"
#include "core/kernels/ggml_ops.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define VL_X86 1
#endif

namespace vl::bench {

#ifdef VL_X86
// 12 independent accumulators hide the latency; the empty asm keeps the compiler from folding
// the loop. Each returns the FLOP it performed.
#define VL_REPEAT12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)

__attribute__((target("avx512f"))) static double loop_f32(int64_t iters) {
#define VL_DECL(i) __m512 a##i = _mm512_set1_ps(static_cast<float>(i));
#define VL_STEP(i) a##i = _mm512_fmadd_ps(x, y, a##i);
#define VL_KEEP(i) __asm__ volatile("" : "+v"(a##i));
  VL_REPEAT12(VL_DECL)
  __m512 x = _mm512_set1_ps(1e-9f), y = x;
  __asm__("" : "+v"(x), "+v"(y));
  for (int64_t it = 0; it < iters; ++it) { VL_REPEAT12(VL_STEP) VL_REPEAT12(VL_KEEP) }
  return 12.0 * 16 * 2 * static_cast<double>(iters);
#undef VL_STEP
}

__attribute__((target("avx512f,avx512bf16"))) static double loop_bf16(int64_t iters) {
#define VL_STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
  VL_REPEAT12(VL_DECL)
  __m512bh x = (__m512bh)_mm512_set1_epi16(0x3000), y = x;
  __asm__("" : "+v"(x), "+v"(y));
  for (int64_t it = 0; it < iters; ++it) { VL_REPEAT12(VL_STEP) VL_REPEAT12(VL_KEEP) }
  return 12.0 * 16 * 4 * static_cast<double>(iters);
#undef VL_STEP
#undef VL_DECL
}

__attribute__((target("avx512f,avx512vnni"))) static double loop_int8(int64_t iters) {
#define VL_DECL(i) __m512i a##i = _mm512_set1_epi32(i);
#define VL_STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
  VL_REPEAT12(VL_DECL)
  __m512i x = _mm512_set1_epi8(1), y = x;
  __asm__("" : "+v"(x), "+v"(y));
  for (int64_t it = 0; it < iters; ++it) { VL_REPEAT12(VL_STEP) VL_REPEAT12(VL_KEEP) }
  return 12.0 * 16 * 8 * static_cast<double>(iters);
#undef VL_STEP
#undef VL_DECL
#undef VL_KEEP
}

// vpmaddubsw + vpmaddwd + vpaddd, 256-bit: the int8 products of int8_gemm_avx2 (32 multiply-adds
// per step, counted as 64 OP). Six different inputs, or the compiler would compute one product
// and add it six times.
__attribute__((target("avx2"))) static double loop_int8_avx2(int64_t iters) {
#define VL_REPEAT6(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define VL_DECL(i) __m256i a##i = _mm256_set1_epi32(i), x##i = _mm256_set1_epi8(static_cast<char>(i + 1));
#define VL_STEP(i) a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(_mm256_maddubs_epi16(x##i, y), ones));
#define VL_KEEP(i) __asm__ volatile("" : "+x"(a##i));  // AVX2 registers: no "v" without AVX-512
  VL_REPEAT6(VL_DECL)
  __m256i y = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
  __asm__("" : "+x"(y), "+x"(ones));
  for (int64_t it = 0; it < iters; ++it) {
    // else the products of loop-invariant inputs would be hoisted out of the loop
    __asm__("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(x4), "+x"(x5));
    VL_REPEAT6(VL_STEP) VL_REPEAT6(VL_KEEP)
  }
  return 6.0 * 32 * 2 * static_cast<double>(iters);
#undef VL_STEP
}

// AVX-VNNI's vpdpbusd, 256-bit (VEX, in asm as in int8_gemm_avx_vnni): 32 multiply-adds per
// instruction, counted as 64 OP.
__attribute__((target("avx2"))) static double loop_int8_vnni_avx2(int64_t iters) {
#undef VL_DECL
#define VL_DECL(i) __m256i a##i = _mm256_set1_epi32(i);
#define VL_STEP(i) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(a##i) : "x"(x), "x"(y));
  VL_REPEAT12(VL_DECL)
  __m256i x = _mm256_set1_epi8(1), y = x;
  for (int64_t it = 0; it < iters; ++it) { VL_REPEAT12(VL_STEP) VL_REPEAT12(VL_KEEP) }
  return 12.0 * 32 * 2 * static_cast<double>(iters);
#undef VL_STEP
#undef VL_DECL
}

// vfmadd, 256-bit: the products of half_gemm_avx2 and half_attention_avx2.
__attribute__((target("avx2,fma"))) static double loop_f32_avx2(int64_t iters) {
#undef VL_DECL
#define VL_STEP(i) a##i = _mm256_fmadd_ps(x, y, a##i);
#define VL_DECL(i) __m256 a##i = _mm256_set1_ps(static_cast<float>(i));
  VL_REPEAT12(VL_DECL)
  __m256 x = _mm256_set1_ps(1e-9f), y = x;
  __asm__("" : "+x"(x), "+x"(y));
  for (int64_t it = 0; it < iters; ++it) { VL_REPEAT12(VL_STEP) VL_REPEAT12(VL_KEEP) }
  return 12.0 * 8 * 2 * static_cast<double>(iters);
#undef VL_STEP
#undef VL_DECL
#undef VL_KEEP
}
#endif

// The loop of one kind, null when this CPU lacks its instructions.
static double (*peak_loop(const std::string& kind))(int64_t) {
#ifdef VL_X86
  const kernels::CpuIsa isa = kernels::cpu_isa_detected();
  const bool avx512f = __builtin_cpu_supports("avx512f");
  if (kind == "f32-fma-512" && avx512f) return loop_f32;
  if (kind == "bf16-dot-512" && isa.avx512_bf16) return loop_bf16;
  if (kind == "int8-dot-512" && isa.avx512_vnni) return loop_int8;
  if (kind == "f32-fma-256" && isa.avx2) return loop_f32_avx2;
  if (kind == "int8-madd-256" && isa.avx2) return loop_int8_avx2;
  if (kind == "int8-vnni-256" && isa.avx_vnni) return loop_int8_vnni_avx2;
#endif
  return nullptr;
}

// CPU time of the whole process (all its threads), seconds.
static double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

Rate peak_flops(const std::string& kind, int threads, double seconds) {
  double (*loop)(int64_t) = peak_loop(kind);
  if (!loop) return {};
  // calibrate on one thread, then run ~`seconds` on all
  const auto t0 = std::chrono::steady_clock::now();
  const double probe = loop(1'000'000);
  const double probe_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto iters = static_cast<int64_t>(1'000'000 * seconds / std::max(probe_s, 1e-6));
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = process_cpu_seconds();
  for (int i = 0; i < threads; ++i) workers.emplace_back([&] { loop(iters); });
  for (auto& w : workers) w.join();
  const double cpu = process_cpu_seconds() - cpu_start;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double flop = probe / 1'000'000 * static_cast<double>(iters) * threads;
  return {flop / elapsed, flop / cpu};
}

// The kernels of one instruction set, as far as this CPU has them.
static kernels::CpuIsa isa_named(const std::string& name) {
  kernels::CpuIsa isa = kernels::cpu_isa_detected();
  if (name == "avx2" || name == "avxvnni") {
    isa.avx512_bf16 = isa.avx512_vnni = false;
    if (name == "avx2") isa.avx_vnni = false;
  } else if (name == "avx512") {
    isa.avx2 = isa.avx_vnni = false;
  } else {
    throw Error("INVALID_ARGUMENT", "unknown instruction set '" + name + "': expected avx2, avxvnni or avx512");
  }
  return isa;
}

MatmulTimes matmul_seconds(const MatmulCase& c) {
  ensure_backends_loaded();
  ggml_backend_ptr cpu(ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr));
  if (!cpu) throw Error("NATIVE", "no CPU backend");
  set_backend_threads(cpu.get(), c.threads);

  ggml_context_ptr weights_ctx(ggml_init({2 * ggml_tensor_overhead(), nullptr, true}));
  ggml_tensor* w = ggml_new_tensor_2d(weights_ctx.get(), c.type, c.k, c.n);
  ggml_tensor* x = ggml_new_tensor_2d(weights_ctx.get(), GGML_TYPE_F32, c.k, c.m);
  ggml_backend_buffer_ptr buffer(ggml_backend_alloc_ctx_tensors(weights_ctx.get(), cpu.get()));
  if (!buffer) throw Error("NATIVE", "could not allocate the benchmark tensors");

  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(c.k * std::max(c.n, c.m)));
  for (float& v : values) v = normal(rng);
  ggml_quantize_chunk(c.type, values.data(), w->data, 0, c.n, c.k, nullptr);
  std::copy_n(values.data(), c.k * c.m, static_cast<float*>(x->data));

  graph::Linear layer{w, nullptr};
  if (!c.isa.empty()) {
    kernels::mark_linear_weight(w);
    if (kernels::pack_linear_weights(weights_ctx.get(), isa_named(c.isa)) != 1) {
      throw Error("INVALID_ARGUMENT", "our kernels cannot run this case with " + c.isa + " on this CPU");
    }
  }
  const size_t meta = ggml_tensor_overhead() * 16 + ggml_graph_overhead();
  ggml_context_ptr ctx(ggml_init({meta, nullptr, true}));
  ggml_tensor* y = graph::linear(ctx.get(), x, layer);
  ggml_cgraph* gf = ggml_new_graph(ctx.get());
  ggml_build_forward_expand(gf, y);
  ggml_gallocr_ptr alloc(ggml_gallocr_new(ggml_backend_get_default_buffer_type(cpu.get())));
  if (!ggml_gallocr_alloc_graph(alloc.get(), gf)) throw Error("NATIVE", "could not allocate the product's buffers");

  // once untimed: the first run touches the output and scratch buffers (page faults, not the kernel)
  ggml_backend_graph_compute(cpu.get(), gf);
  MatmulTimes best{1e30, 1e30};
  for (int r = 0; r < std::max(1, c.reps); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = process_cpu_seconds();
    ggml_backend_graph_compute(cpu.get(), gf);
    best.cpu_seconds = std::min(best.cpu_seconds, process_cpu_seconds() - cpu0);
    best.wall_seconds = std::min(best.wall_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace vl::bench
