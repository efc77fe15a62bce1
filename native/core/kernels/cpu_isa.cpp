#include "core/kernels/cpu_isa.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace vl::kernels {

CpuIsa cpu_isa_detected() {
  CpuIsa isa;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  isa.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  isa.avx_vnni = isa.avx2 && __builtin_cpu_supports("avxvnni");
  isa.avx512_bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  isa.avx512_vnni = avx512 && __builtin_cpu_supports("avx512vnni");
#endif
  return isa;
}

CpuIsa cpu_isa_allowed() {
  CpuIsa isa = cpu_isa_detected();
  const char* cap = std::getenv("VIDEO_LLAMA_CPU_ISA");
  const std::string level = cap ? cap : "avx512";
  if (level == "avx512") return isa;
  if (level != "avxvnni" && level != "avx2" && level != "none") {
    throw Error("INVALID_ARGUMENT",
                "VIDEO_LLAMA_CPU_ISA is '" + level + "': expected avx512, avxvnni, avx2 or none");
  }
  isa.avx512_bf16 = isa.avx512_vnni = false;
  if (level != "avxvnni") isa.avx_vnni = false;
  if (level == "none") isa.avx2 = false;
  return isa;
}

}  // namespace vl::kernels
