#pragma once
// Micro-benchmarks behind `npm run bench` (never used by the library itself): the machine's peak
// arithmetic rate, and one matrix product through ggml or through our own kernel.
#include <cstdint>
#include <string>

#include "ggml.h"

namespace vl::bench {

// FLOP/s of a loop of independent register-only multiply-adds on `threads` threads for about
// `seconds`: "f32-fma-512" / "f32-fma-256" (vfmadd, 2 FLOP per f32 lane), "bf16-dot-512"
// (vdpbf16ps, 4 FLOP per f32 lane), "int8-dot-512" (vpdpbusd, 8 OP per i32 lane) or
// "int8-madd-256" (vpmaddubsw + vpmaddwd + vpaddd, 4 OP per i16 lane) or "int8-vnni-256" (AVX-VNNI
// vpdpbusd, 8 OP per i32 lane). 0 when this CPU lacks the instructions.
double peak_flops(const std::string& kind, int threads, double seconds);

struct MatmulCase {
  int64_t m = 0, k = 0, n = 0;  // y [n, m] = w [k, n] · x [k, m] (ggml order): m tokens, k inputs, n outputs
  ggml_type type = GGML_TYPE_F32;  // weight type
  std::string isa;                 // "avx512", "avxvnni" or "avx2": our kernel of that instruction set instead of ggml_mul_mat
  int threads = 1, reps = 3;
};

// Best wall time (seconds) of one product on the CPU backend, activations f32 in and out.
double matmul_seconds(const MatmulCase& c);

}  // namespace vl::bench
