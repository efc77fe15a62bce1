#pragma once
// Which of our kernels this CPU may run. Detected once from CPUID (GCC/Clang's
// __builtin_cpu_supports, which also checks that the OS saves the wide registers), then capped by
// the environment variable VIDEO_LLAMA_CPU_ISA, read each time it is asked (at projector load):
//   avx512  every kernel the CPU has (the default)
//   avx2    the AVX2 kernels only, even on an AVX-512 CPU (how the AVX2 path is tested there)
//   none    no kernel of ours: every product runs on ggml's own kernels (to compare them)
// Any other value is an INVALID_ARGUMENT error, so that a typo cannot silently measure the wrong path.
namespace vl::kernels {

// The instruction set a kernel is written in, where one job has both versions.
enum class Isa { Avx2, Avx512 };

// What the instructions our kernels are built from allow, after the cap.
struct CpuIsa {
  bool avx2 = false;         // AVX2 + FMA + F16C: half_gemm_avx2, int8_gemm_avx2
  bool avx512_bf16 = false;  // AVX-512 F/BW/VL/DQ + BF16: bf16_gemm, bf16_attention
  bool avx512_vnni = false;  // AVX-512 F/BW/VL/DQ + VNNI: int8_gemm

  bool any() const { return avx2 || avx512_bf16 || avx512_vnni; }
};

// This CPU's instructions, whatever the cap.
CpuIsa cpu_isa_detected();

// cpu_isa_detected() limited by VIDEO_LLAMA_CPU_ISA.
CpuIsa cpu_isa_allowed();

}  // namespace vl::kernels
