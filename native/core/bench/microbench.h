#pragma once
// Micro-benchmarks behind `npm run bench` (never used by the library itself): the machine's peak
// arithmetic rate, and one matrix product through ggml or through our own kernel.
#include <cstdint>
#include <string>

#include "ggml.h"

namespace vl::bench {

// FLOP/s of a loop of independent register-only multiply-adds on `threads` threads for about
// `seconds`: "f32-fma" (vfmadd, 2 FLOP per lane), "bf16-dot" (vdpbf16ps, 4 FLOP per f32 lane) or
// "int8-dot" (vpdpbusd, 8 OP per i32 lane), 512-bit. 0 when this CPU lacks the instruction.
double peak_flops(const std::string& kind, int threads, double seconds);

struct MatmulCase {
  int64_t m = 0, k = 0, n = 0;  // y [n, m] = w [k, n] · x [k, m] (ggml order): m tokens, k inputs, n outputs
  ggml_type type = GGML_TYPE_F32;  // weight type
  bool own_kernel = false;         // our bf16 kernel (type must be bf16) instead of ggml_mul_mat
  int threads = 1, reps = 3;
};

// Best wall time (seconds) of one product on the CPU backend, activations f32 in and out.
double matmul_seconds(const MatmulCase& c);

}  // namespace vl::bench
