#include "core/kernels/ggml_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/kernels/avx2_gemm.h"
#include "core/kernels/cpu_isa.h"
#include "core/kernels/int8_gemm.h"
#include "core/kernels/layer_norm.h"
#include "ggml-backend.h"

namespace vl::kernels {

// ---------------------------------------------------------------------------------------------
// Registration and packing

// op_params[0] of a registered weight; op_params[1] its PackedFormat.
constexpr int32_t kLinearMark = 0x564c4c57;  // "VLLW"

void mark_linear_weight(ggml_tensor* weight) {
  weight->op_params[0] = kLinearMark;
  weight->op_params[1] = static_cast<int32_t>(PackedFormat::None);
}

PackedFormat packed_format(const ggml_tensor* weight) {
  const ggml_tensor* w = weight->view_src ? weight->view_src : weight;
  if (w->op != GGML_OP_NONE || w->op_params[0] != kLinearMark) return PackedFormat::None;
  return static_cast<PackedFormat>(w->op_params[1]);
}

static bool is_avx512(PackedFormat f) { return f == PackedFormat::Bf16Avx512 || f == PackedFormat::Int8Avx512; }
static bool is_int8(PackedFormat f) {
  return f == PackedFormat::Int8Avx512 || f == PackedFormat::Int8Avx2 || f == PackedFormat::Int8AvxVnni;
}

// The kernel this CPU may run for a weight of `type` [k, n], None when none handles it. 16-bit
// weights stay 16-bit (an f16 or bf16 file keeps its fidelity bound: 8-bit products of them leave
// it, docs/performance.md), q8_0 runs the 8-bit kernels.
static PackedFormat format_for(ggml_type type, int64_t k, int64_t n, const CpuIsa& isa) {
  const bool half = type == GGML_TYPE_BF16 || type == GGML_TYPE_F16;
  if (half && bf16_packable(k, n)) {
    if (isa.avx512_bf16) return PackedFormat::Bf16Avx512;
    if (isa.avx2) return type == GGML_TYPE_BF16 ? PackedFormat::Bf16Avx2 : PackedFormat::F16Avx2;
  }
  if (type == GGML_TYPE_Q8_0 && int8_packable(k, n)) {
    if (isa.avx512_vnni) return PackedFormat::Int8Avx512;
    if (isa.avx_vnni) return PackedFormat::Int8AvxVnni;
    if (isa.avx2) return PackedFormat::Int8Avx2;
  }
  return PackedFormat::None;
}

// Repacks one weight into `format` and retypes it (see the header).
static void pack(ggml_tensor* w, PackedFormat format) {
  const int64_t k = w->ne[0], n = w->ne[1];
  const size_t row_bytes = w->nb[1];
  if (is_int8(format)) {
    pack_q8_0_panels(w->data, k, n, format == PackedFormat::Int8Avx2 ? kInt7Levels : kInt8Levels);
  } else {
    auto* values = static_cast<uint16_t*>(w->data);
    if (w->type == GGML_TYPE_F16 && format == PackedFormat::Bf16Avx512) bf16_from_f16_in_place(values, k * n);
    pack_bf16_panels(values, k, n);
  }
  w->type = GGML_TYPE_I8;
  w->nb[0] = 1;
  w->nb[1] = row_bytes;
  w->nb[2] = w->nb[3] = row_bytes * static_cast<size_t>(n);
  w->op_params[1] = static_cast<int32_t>(format);
}

int pack_linear_weights(ggml_context* weights) { return pack_linear_weights(weights, cpu_isa_allowed()); }

int pack_linear_weights(ggml_context* weights, const CpuIsa& isa) {
  int packed = 0;
  for (ggml_tensor* w = ggml_get_first_tensor(weights); w; w = ggml_get_next_tensor(weights, w)) {
    if (w->op_params[0] != kLinearMark || packed_format(w) != PackedFormat::None) continue;
    if (!ggml_is_contiguous(w) || !w->buffer || !ggml_backend_buffer_is_host(w->buffer)) continue;
    if (w->ne[2] != 1 || w->ne[3] != 1) continue;
    const PackedFormat format = format_for(w->type, w->ne[0], w->ne[1], isa);
    if (format == PackedFormat::None) continue;
    pack(w, format);
    ++packed;
  }
  return packed;
}

// ---------------------------------------------------------------------------------------------
// Ops. Products: src0 the kernel's input rows, src1 the packed weight, src2 the bias [n] and src3
// a residual [n, M] (either may be null), userdata the epilogue; one op function per format.

static GemmOutput gemm_output(ggml_tensor* dst, void* epilogue) {
  const ggml_tensor* bias = dst->src[2];
  const ggml_tensor* residual = dst->src[3];
  GemmOutput out;
  out.bias = bias ? static_cast<const float*>(bias->data) : nullptr;
  out.epilogue = static_cast<Epilogue>(reinterpret_cast<intptr_t>(epilogue));
  out.residual = residual ? static_cast<const float*>(residual->data) : nullptr;
  out.residual_stride = residual ? static_cast<int64_t>(residual->nb[1] / sizeof(float)) : 0;
  out.y = static_cast<float*>(dst->data);
  out.y_stride = static_cast<int64_t>(dst->nb[1] / sizeof(float));
  return out;
}

// Row stride of src0 in elements of `T`.
template <typename T>
static int64_t stride_of(const ggml_tensor* x) {
  return static_cast<int64_t>(x->nb[1] / sizeof(T));
}

template <PackedFormat F>
static void gemm_op(ggml_tensor* dst, int ith, int nth, void* epilogue) {
  const ggml_tensor* x = dst->src[0];
  const ggml_tensor* w = dst->src[1];
  const int64_t m = dst->ne[1], n = dst->ne[0], k = w->ne[0];
  if constexpr (F == PackedFormat::Bf16Avx512) {
    const Bf16GemmArgs args{static_cast<const uint16_t*>(x->data), stride_of<uint16_t>(x),
                            static_cast<const uint16_t*>(w->data), m, n, k, gemm_output(dst, epilogue)};
    bf16_gemm(args, ith, nth);
  } else if constexpr (F == PackedFormat::Bf16Avx2 || F == PackedFormat::F16Avx2) {
    const HalfGemmArgs args{static_cast<const float*>(x->data), stride_of<float>(x), static_cast<const uint16_t*>(w->data),
                            F == PackedFormat::F16Avx2 ? HalfType::F16 : HalfType::Bf16, m, n, k,
                            gemm_output(dst, epilogue)};
    half_gemm_avx2(args, ith, nth);
  } else {
    const Int8GemmArgs args{static_cast<const uint8_t*>(x->data), static_cast<const uint8_t*>(w->data), m, n, k,
                            gemm_output(dst, epilogue)};
    if constexpr (F == PackedFormat::Int8Avx512) {
      int8_gemm(args, ith, nth);
    } else if constexpr (F == PackedFormat::Int8AvxVnni) {
      int8_gemm_avx_vnni(args, ith, nth);
    } else {
      int8_gemm_avx2(args, ith, nth);
    }
  }
}

static ggml_custom_op_t gemm_op_for(PackedFormat format) {
  switch (format) {
    case PackedFormat::Bf16Avx512: return gemm_op<PackedFormat::Bf16Avx512>;
    case PackedFormat::Int8Avx512: return gemm_op<PackedFormat::Int8Avx512>;
    case PackedFormat::Bf16Avx2: return gemm_op<PackedFormat::Bf16Avx2>;
    case PackedFormat::F16Avx2: return gemm_op<PackedFormat::F16Avx2>;
    case PackedFormat::Int8Avx2: return gemm_op<PackedFormat::Int8Avx2>;
    case PackedFormat::Int8AvxVnni: return gemm_op<PackedFormat::Int8AvxVnni>;
    case PackedFormat::None: break;
  }
  throw Error("NATIVE", "a product of ours was asked for a weight that is not packed");
}

static Isa isa_of(PackedFormat format) { return is_avx512(format) ? Isa::Avx512 : Isa::Avx2; }

// Rows [begin, end) of `rows` that worker `ith` of `nth` handles.
static std::pair<int64_t, int64_t> row_share(int64_t rows, int ith, int nth) {
  const int64_t per = (rows + nth - 1) / nth, begin = std::min(rows, ith * per);
  return {begin, std::min(rows, begin + per)};
}

// dst [row bytes, M] (i8) = src0 [k, M] (f32) quantized per token and block for the int8 kernel of
// the Isa in userdata.
static void int8_quantize_op(ggml_tensor* dst, int ith, int nth, void* isa) {
  const ggml_tensor* x = dst->src[0];
  const auto [begin, end] = row_share(x->ne[1], ith, nth);
  quantize_rows(static_cast<const float*>(x->data), stride_of<float>(x), x->ne[0], begin, end,
                   static_cast<uint8_t*>(dst->data), static_cast<Isa>(reinterpret_cast<intptr_t>(isa)));
}

// The activations of a packed layer as its kernel reads them: x [k, ...] -> rows of bf16, f32 or
// quantized bytes.
static ggml_tensor* kernel_input(ggml_context* ctx, ggml_tensor* x, PackedFormat format) {
  const int64_t k = x->ne[0], rows = ggml_nelements(x) / k;
  if (format == PackedFormat::Bf16Avx512) {
    // ggml_cast, not ggml_cpy into a new tensor: that tensor would be a leaf the allocator never frees
    return ggml_reshape_2d(ctx, ggml_cast(ctx, x, GGML_TYPE_BF16), k, rows);
  }
  if (!ggml_is_contiguous(x)) x = ggml_cont(ctx, x);
  x = ggml_reshape_2d(ctx, x, k, rows);
  if (!is_int8(format)) return x;
  ggml_tensor* args[] = {x};
  return ggml_custom_4d(ctx, GGML_TYPE_I8, static_cast<int64_t>(int8_row_bytes(k)), rows, 1, 1, args, 1, int8_quantize_op,
                        GGML_N_TASKS_MAX, reinterpret_cast<void*>(static_cast<intptr_t>(isa_of(format))));
}

ggml_tensor* packed_product(ggml_context* ctx, ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias,
                            Epilogue epilogue, ggml_tensor* residual) {
  const PackedFormat format = packed_format(weight);
  const int64_t out = weight->ne[1];
  // f32 activations, unless layer_norm_into already wrote the kernel's input rows
  ggml_tensor* input = x->type == GGML_TYPE_F32 ? kernel_input(ctx, x, format)
                                                : ggml_reshape_2d(ctx, x, x->ne[0], ggml_nrows(x));
  if (residual && !ggml_is_contiguous(residual)) residual = ggml_cont(ctx, residual);
  ggml_tensor* args[] = {input, weight, bias, residual};
  ggml_tensor* y = ggml_custom_4d(ctx, GGML_TYPE_F32, out, input->ne[1], 1, 1, args, 4, gemm_op_for(format),
                                  GGML_N_TASKS_MAX, reinterpret_cast<void*>(static_cast<intptr_t>(epilogue)));
  return ggml_reshape_4d(ctx, y, out, x->ne[1], x->ne[2], x->ne[3]);
}

// dst = LayerNorm(src0 [k, M]) · src1 + src2 as the input rows of a bf16 (dst type bf16), 16-bit
// AVX2 (f32) or int8 (i8) product; userdata: eps as float bits, and the Isa in bit 32.
static void norm_into_op(ggml_tensor* dst, int ith, int nth, void* params) {
  const ggml_tensor* x = dst->src[0];
  LayerNormRows rows;
  rows.x = static_cast<const float*>(x->data);
  rows.x_stride = stride_of<float>(x);
  rows.k = x->ne[0];
  rows.weight = static_cast<const float*>(dst->src[1]->data);
  rows.bias = static_cast<const float*>(dst->src[2]->data);
  const auto bits = reinterpret_cast<uintptr_t>(params);
  const auto eps_bits = static_cast<uint32_t>(bits);
  std::memcpy(&rows.eps, &eps_bits, sizeof(rows.eps));
  const auto [begin, end] = row_share(ggml_nrows(x), ith, nth);
  if (dst->type == GGML_TYPE_BF16) {
    layer_norm_to_bf16(rows, begin, end, static_cast<uint16_t*>(dst->data));
  } else if (dst->type == GGML_TYPE_F32) {
    layer_norm_to_f32(rows, begin, end, static_cast<float*>(dst->data));
  } else {
    layer_norm_to_u8(rows, begin, end, static_cast<uint8_t*>(dst->data), static_cast<Isa>(bits >> 32));
  }
}

ggml_tensor* layer_norm_into(ggml_context* ctx, ggml_tensor* x, ggml_tensor* norm_weight, ggml_tensor* norm_bias,
                             float eps, const ggml_tensor* consumer) {
  const PackedFormat format = packed_format(consumer);
  const int64_t k = x->ne[0];
  if (format == PackedFormat::None || !ggml_is_contiguous(x) || k % 8 != 0) return nullptr;
  const bool bf16 = format == PackedFormat::Bf16Avx512, int8 = is_int8(format);
  const ggml_type type = bf16 ? GGML_TYPE_BF16 : int8 ? GGML_TYPE_I8 : GGML_TYPE_F32;
  const int64_t row = int8 ? static_cast<int64_t>(int8_row_bytes(k)) : k;
  ggml_tensor* args[] = {x, norm_weight, norm_bias};
  uint32_t eps_bits;
  std::memcpy(&eps_bits, &eps, sizeof(eps_bits));
  const uintptr_t params = eps_bits | (static_cast<uintptr_t>(isa_of(format)) << 32);
  return ggml_custom_4d(ctx, type, row, x->ne[1], x->ne[2], x->ne[3], args, 3, norm_into_op, GGML_N_TASKS_MAX,
                        reinterpret_cast<void*>(params));
}

// dst [D, Nq, B] = attention(src0 q [D, Nq, B], src1 k, src2 v [D, Nk, B]); userdata: the head
// count. One op function per kernel.
template <void (*Kernel)(const Bf16AttentionArgs&, int, int)>
static void attention_op(ggml_tensor* dst, int ith, int nth, void* heads) {
  const auto operand = [](const ggml_tensor* t) {
    return AttentionOperand{static_cast<const float*>(t->data), stride_of<float>(t),
                            static_cast<int64_t>(t->nb[2] / sizeof(float))};
  };
  Bf16AttentionArgs args;
  args.q = operand(dst->src[0]);
  args.k = operand(dst->src[1]);
  args.v = operand(dst->src[2]);
  args.out = static_cast<float*>(dst->data);
  args.n_q = dst->ne[1];
  args.n_kv = dst->src[1]->ne[1];
  args.batch = dst->ne[2];
  args.heads = static_cast<int64_t>(reinterpret_cast<intptr_t>(heads));
  args.head_dim = dst->ne[0] / args.heads;
  args.scale = 1.0f / std::sqrt(static_cast<float>(args.head_dim));
  Kernel(args, ith, nth);
}

static bool is_f32_rows(const ggml_tensor* t) { return t->type == GGML_TYPE_F32 && t->nb[0] == sizeof(float); }

// The attention op for the layers a `projection` of this format made: AVX-512 BF16's with the
// bf16 products, AVX2's with any AVX2 product; none with the AVX-512 int8 one (ggml's attention).
static ggml_custom_op_t attention_op_for(PackedFormat format) {
  switch (format) {
    case PackedFormat::Bf16Avx512: return attention_op<bf16_attention>;
    case PackedFormat::Bf16Avx2:
    case PackedFormat::F16Avx2:
    case PackedFormat::Int8Avx2:
    case PackedFormat::Int8AvxVnni: return attention_op<half_attention_avx2>;
    case PackedFormat::Int8Avx512:
    case PackedFormat::None: break;
  }
  return nullptr;
}

ggml_tensor* attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads,
                       const ggml_tensor* projection) {
  const int64_t width = q->ne[0];
  const ggml_custom_op_t op = attention_op_for(packed_format(projection));
  if (!op || !bf16_attention_supports(width / heads) || !is_f32_rows(q) || !is_f32_rows(k) || !is_f32_rows(v)) {
    return nullptr;
  }
  ggml_tensor* args[] = {q, k, v};
  return ggml_custom_4d(ctx, GGML_TYPE_F32, width, q->ne[1], q->ne[2], 1, args, 3, op, GGML_N_TASKS_MAX,
                        reinterpret_cast<void*>(static_cast<intptr_t>(heads)));
}

void check_packed_weights_unused_by_ggml(const ggml_cgraph* graph) {
  for (int i = 0; i < ggml_graph_n_nodes(const_cast<ggml_cgraph*>(graph)); ++i) {
    const ggml_tensor* node = ggml_graph_node(const_cast<ggml_cgraph*>(graph), i);
    // views and reshapes only pass the weight on to one of our ops
    if (op_name(node) || node->op == GGML_OP_VIEW || node->op == GGML_OP_RESHAPE) continue;
    for (const ggml_tensor* src : node->src) {
      if (src && packed_format(src) != PackedFormat::None) {
        throw Error("NATIVE", std::string("graph node '") + node->name + "' (" + ggml_op_desc(node) +
                                  ") reads the packed weight '" + src->name + "', which only our kernels can read");
      }
    }
  }
}

const char* op_name(const ggml_tensor* node) {
  if (node->op != GGML_OP_CUSTOM) return nullptr;
  // ggml_custom_4d stores its function pointer first in op_params (struct ggml_custom_op_params)
  ggml_custom_op_t fun = nullptr;
  std::memcpy(&fun, node->op_params, sizeof(fun));
  if (fun == gemm_op<PackedFormat::Bf16Avx512>) return "bf16_gemm";
  if (fun == gemm_op<PackedFormat::Int8Avx512>) return "int8_gemm";
  if (fun == gemm_op<PackedFormat::Bf16Avx2> || fun == gemm_op<PackedFormat::F16Avx2>) return "half_gemm_avx2";
  if (fun == gemm_op<PackedFormat::Int8Avx2>) return "int8_gemm_avx2";
  if (fun == gemm_op<PackedFormat::Int8AvxVnni>) return "int8_gemm_avx_vnni";
  if (fun == int8_quantize_op) return "int8_quantize";
  if (fun == norm_into_op) return "norm_into";
  if (fun == attention_op<bf16_attention>) return "bf16_attention";
  if (fun == attention_op<half_attention_avx2>) return "half_attention_avx2";
  return nullptr;
}

}  // namespace vl::kernels
