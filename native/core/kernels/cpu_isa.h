#pragma once
// Which of our kernels this CPU may run. Detected once from CPUID (GCC/Clang's
// __builtin_cpu_supports, which also checks that the OS saves the wide registers), then capped by
// the environment variable VIDEO_LLAMA_CPU_ISA, read each time it is asked (at projector load):
//   avx512   every kernel the CPU has (the default)
//   avxvnni  the AVX2 kernels, with AVX-VNNI's 256-bit vpdpbusd where the CPU has it (Intel since
//            Alder Lake, AMD since Zen 5), even on an AVX-512 CPU
//   avx2     the AVX2 kernels without AVX-VNNI: what an AVX2-only CPU such as AMD Zen 3 runs
//   none     no kernel of ours: every product runs on ggml's own kernels (to compare them)
// Any other value is an INVALID_ARGUMENT error, so that a typo cannot silently measure the wrong path.
namespace vl::kernels {

// The instruction set a kernel is written in, where one job has both versions.
enum class Isa { Avx2, Avx512 };

// What the instructions our kernels are built from allow, after the cap.
struct CpuIsa {
  bool avx2 = false;         // AVX2 + FMA + F16C: half_gemm_avx2, int8_gemm_avx2, half_attention_avx2
  bool avx_vnni = false;     // avx2 + AVX-VNNI (vpdpbusd on 256-bit registers): int8_gemm_avx2's VNNI tiles
  bool avx512_bf16 = false;  // AVX-512 F/BW/VL/DQ + BF16: bf16_gemm, bf16_attention
  bool avx512_vnni = false;  // AVX-512 F/BW/VL/DQ + VNNI: int8_gemm

  bool any() const { return avx2 || avx512_bf16 || avx512_vnni; }
};

// This CPU's instructions, whatever the cap.
CpuIsa cpu_isa_detected();

// cpu_isa_detected() limited by VIDEO_LLAMA_CPU_ISA.
CpuIsa cpu_isa_allowed();

}  // namespace vl::kernels
