#pragma once
// Our kernels inside ggml graphs: a projector's linear weights repacked once at load, and the
// custom ops (ggml_custom_4d) that graph/common.h puts in place of ggml's products. The one place
// that knows which kernel runs which packed weight.
//
// A linear weight is registered for packing where it is declared (mark_linear_weight, called by
// graph::load_linear), so no encoder keeps a list of its layers. Once packed, a weight keeps its
// logical shape [k inputs, n outputs] but becomes GGML_TYPE_I8 with its panels' byte strides
// (nb[1] = bytes per output row, so a slice of whole panels is still a view): ggml has no product
// for I8 weights (ggml's CPU backend would crash on one), and check_packed_weights_unused_by_ggml
// turns a stray ggml_mul_mat on a packed weight into an error before the graph runs, instead of
// panels read as rows.
// The format is kept in the weight's op_params, which ggml leaves unused on a leaf tensor.
#include <cstdint>

#include "core/kernels/bf16_gemm.h"
#include "core/kernels/cpu_isa.h"
#include "ggml.h"

namespace vl::kernels {

// How a weight is packed, i.e. which kernel runs it.
enum class PackedFormat : int32_t {
  None = 0,    // not packed: ggml's kernels
  Bf16Avx512,  // bf16 pair panels (from bf16 or f16 weights): bf16_gemm, and bf16_attention for its block
  Int8Avx512,  // int8 panels (from q8_0): int8_gemm
  Bf16Avx2,    // bf16 pair panels: half_gemm_avx2
  F16Avx2,     // f16 pair panels: half_gemm_avx2
  Int8Avx2,    // int8 panels with 7-bit weights (from q8_0): int8_gemm_avx2
  Int8AvxVnni, // int8 panels (from q8_0): int8_gemm_avx_vnni
};

// Registers a linear layer's weight (declared, not yet loaded) for pack_linear_weights.
void mark_linear_weight(ggml_tensor* weight);

// Repacks, in place, every registered weight of `weights` that lives in host memory and that a
// kernel this CPU may run (cpu_isa_allowed(), so VIDEO_LLAMA_CPU_ISA is read here) handles at
// its size: bf16 and f16 on AVX-512 BF16 (f16 converted to bf16) or else AVX2, q8_0 on AVX-512
// VNNI or else AVX-VNNI or AVX2. Returns how many it repacked.
int pack_linear_weights(ggml_context* weights);

// The same for the kernels `isa` allows (e.g. one instruction set of the CPU, for benchmarks).
int pack_linear_weights(ggml_context* weights, const CpuIsa& isa);

// How `weight` (or the weight it is a view of) is packed.
PackedFormat packed_format(const ggml_tensor* weight);

// y = epilogue(x · wᵀ + bias) + residual with a packed weight (bias and residual may be null):
// x [k, N, B] (f32, or already the kernel's input rows from layer_norm_into) -> [n, N, B].
ggml_tensor* packed_product(ggml_context* ctx, ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias,
                            Epilogue epilogue, ggml_tensor* residual);

// LayerNorm(x) · norm_weight + norm_bias in one op, written as the input rows of the kernel that
// runs `consumer` (a packed weight); null where `consumer` is not packed, x is not contiguous or
// its width not a multiple of 8 (then ggml's LayerNorm).
ggml_tensor* layer_norm_into(ggml_context* ctx, ggml_tensor* x, ggml_tensor* norm_weight, ggml_tensor* norm_bias,
                             float eps, const ggml_tensor* consumer);

// softmax(q kᵀ / √head_dim) v as one op of ours when `projection`, the weight that made q, k and
// v, runs on the AVX-512 BF16 kernels (bf16_attention) or on AVX2 ones (half_attention_avx2) and
// the operands suit it; else null.
ggml_tensor* attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads,
                       const ggml_tensor* projection);

// Throws Error("NATIVE") when a node other than ours reads a packed weight (a graph builder that
// bypassed graph::linear). Cheap: one pass over the nodes' sources.
void check_packed_weights_unused_by_ggml(const ggml_cgraph* graph);

// "bf16_gemm", "int8_gemm", "half_gemm_avx2", "int8_gemm_avx2", "int8_gemm_avx_vnni",
// "int8_quantize", "norm_into", "bf16_attention" or "half_attention_avx2" for a node that runs one
// of our kernels, else null (for profiles).
const char* op_name(const ggml_tensor* node);

}  // namespace vl::kernels
