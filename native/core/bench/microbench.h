#pragma once
// Micro-benchmarks behind `npm run bench` (never used by the library itself): the machine's peak
// arithmetic rate, and one matrix product through ggml or through our own kernel.
#include <cstdint>
#include <string>

#include "ggml.h"

namespace vl::bench {

// A rate measured two ways: per second of wall time, and per second of CPU time of the whole
// process (all threads). On a machine shared with other jobs the wall-time rate depends on how
// much of the cores the job got; the CPU-time one does not (what the threads did while they ran),
// so a kernel's fraction of the peak is taken per CPU-second.
struct Rate {
  double per_wall_second = 0;
  double per_cpu_second = 0;
};

// FLOP of a loop of independent register-only multiply-adds on `threads` threads for about
// `seconds`: "f32-fma-512" / "f32-fma-256" (vfmadd, 2 FLOP per f32 lane), "bf16-dot-512"
// (vdpbf16ps, 4 FLOP per f32 lane), "int8-dot-512" (vpdpbusd, 8 OP per i32 lane) or
// "int8-madd-256" (vpmaddubsw + vpmaddwd + vpaddd, 4 OP per i16 lane) or "int8-vnni-256" (AVX-VNNI
// vpdpbusd, 8 OP per i32 lane). 0 when this CPU lacks the instructions.
Rate peak_flops(const std::string& kind, int threads, double seconds);

struct MatmulCase {
  int64_t m = 0, k = 0, n = 0;  // y [n, m] = w [k, n] · x [k, m] (ggml order): m tokens, k inputs, n outputs
  ggml_type type = GGML_TYPE_F32;  // weight type
  std::string isa;                 // "avx512", "avxvnni" or "avx2": our kernel of that instruction set instead of ggml_mul_mat
  int threads = 1, reps = 3;
};

// Best wall time and best process CPU time (seconds) of one product on the CPU backend, activations
// f32 in and out.
struct MatmulTimes {
  double wall_seconds = 0;
  double cpu_seconds = 0;
};
MatmulTimes matmul_seconds(const MatmulCase& c);

}  // namespace vl::bench
