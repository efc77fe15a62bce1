#include "core/graph/common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/kernels/bf16_gemm.h"
#include "core/kernels/int8_gemm.h"
#include "core/kernels/layer_norm.h"
#include "core/error.h"
#include "core/projector_loader.h"
#include "ggml-backend.h"

namespace vl::graph {

LayerNorm load_layer_norm(ProjectorLoader& file, const std::string& prefix, int64_t width) {
  return {file.tensor(prefix + ".weight", {width}, TensorKind::F32),
          file.tensor(prefix + ".bias", {width}, TensorKind::F32)};
}

Linear load_linear(ProjectorLoader& file, const std::string& prefix, int64_t in, int64_t out, bool with_bias) {
  Linear layer;
  layer.weight = file.tensor(prefix + ".weight", {in, out}, TensorKind::Matrix);
  if (with_bias) layer.bias = file.tensor(prefix + ".bias", {out}, TensorKind::F32);
  return layer;
}

// VIDEO_LLAMA_KERNELS=ggml keeps every product on ggml's own kernels (to compare them).
static bool own_kernels_enabled() {
  const char* choice = std::getenv("VIDEO_LLAMA_KERNELS");
  return !(choice && std::strcmp(choice, "ggml") == 0);
}

bool pack_for_cpu(Linear& layer) {
  ggml_tensor* w = layer.weight;
  if (layer.on_own_kernel() || !own_kernels_enabled()) return false;
  if (!ggml_is_contiguous(w) || !w->buffer || !ggml_backend_buffer_is_host(w->buffer)) return false;
  if (w->ne[2] != 1 || w->ne[3] != 1) return false;
  const int64_t k = w->ne[0], n = w->ne[1];
  if (w->type == GGML_TYPE_BF16 && kernels::bf16_gemm_available() && kernels::bf16_packable(k, n)) {
    kernels::pack_bf16_panels(static_cast<uint16_t*>(w->data), k, n);
    layer.packed = Linear::Packed::Bf16;
    return true;
  }
  if (w->type == GGML_TYPE_Q8_0 && kernels::int8_gemm_available() && kernels::int8_packable(k, n)) {
    kernels::pack_q8_0_panels(w->data, k, n);
    layer.packed = Linear::Packed::Int8;
    return true;
  }
  return false;
}

ggml_tensor* row_slice(ggml_context* ctx, ggml_tensor* x, int64_t first, int64_t count) {
  return ggml_view_3d(ctx, x, count, x->ne[1], x->ne[2], x->nb[1], x->nb[2], first * x->nb[0]);
}

Linear output_slice(ggml_context* ctx, const Linear& packed, int64_t first, int64_t count) {
  ggml_tensor* w = packed.weight;
  if (packed.on_own_kernel() && (first % kernels::kPanel != 0 || count % kernels::kPanel != 0)) {
    throw Error("NATIVE", "a slice of a repacked weight must cover whole panels");
  }
  Linear slice;
  slice.packed = packed.packed;
  slice.weight = ggml_view_2d(ctx, w, w->ne[0], count, w->nb[1], first * w->nb[1]);
  if (packed.bias) slice.bias = ggml_view_1d(ctx, packed.bias, count, first * packed.bias->nb[0]);
  return slice;
}

ggml_tensor* layer_norm(ggml_context* ctx, ggml_tensor* x, const LayerNorm& norm, float eps) {
  x = ggml_norm(ctx, x, eps);
  x = ggml_mul(ctx, x, norm.weight);
  return ggml_add(ctx, x, norm.bias);
}

// Our products' custom ops: src0 the kernel's input rows, src1 the packed weight, src2 the bias
// [N] and src3 a residual [N, M] (either may be null), userdata the epilogue.
static kernels::GemmOutput gemm_output(ggml_tensor* dst, void* epilogue) {
  const ggml_tensor* bias = dst->src[2];
  const ggml_tensor* residual = dst->src[3];
  kernels::GemmOutput out;
  out.bias = bias ? static_cast<const float*>(bias->data) : nullptr;
  out.epilogue = static_cast<kernels::Epilogue>(reinterpret_cast<intptr_t>(epilogue));
  out.residual = residual ? static_cast<const float*>(residual->data) : nullptr;
  out.residual_stride = residual ? static_cast<int64_t>(residual->nb[1] / sizeof(float)) : 0;
  out.y = static_cast<float*>(dst->data);
  out.y_stride = static_cast<int64_t>(dst->nb[1] / sizeof(float));
  return out;
}

// dst [N, M] = src0 [K, M] (bf16) · src1ᵀ (packed [K, N]), then gemm_output.
static void bf16_gemm_op(ggml_tensor* dst, int ith, int nth, void* epilogue) {
  const ggml_tensor* x = dst->src[0];
  kernels::Bf16GemmArgs args;
  args.x = static_cast<const uint16_t*>(x->data);
  args.x_stride = static_cast<int64_t>(x->nb[1] / sizeof(uint16_t));
  args.w = static_cast<const uint16_t*>(dst->src[1]->data);
  args.m = dst->ne[1];
  args.n = dst->ne[0];
  args.k = dst->src[1]->ne[0];
  args.out = gemm_output(dst, epilogue);
  kernels::bf16_gemm(args, ith, nth);
}

// dst [row bytes, M] (i8) = src0 [K, M] (f32) quantized per token and block (kernels::quantize_rows_u8).
static void int8_quantize_op(ggml_tensor* dst, int ith, int nth, void*) {
  const ggml_tensor* x = dst->src[0];
  const int64_t rows = x->ne[1], per = (rows + nth - 1) / nth;
  const int64_t begin = std::min(rows, ith * per), end = std::min(rows, begin + per);
  kernels::quantize_rows_u8(static_cast<const float*>(x->data), static_cast<int64_t>(x->nb[1] / sizeof(float)), x->ne[0],
                            begin, end, static_cast<uint8_t*>(dst->data));
}

// dst [N, M] = src0 (quantized [K, M]) · src1ᵀ (packed q8_0 [K, N]), then gemm_output.
static void int8_gemm_op(ggml_tensor* dst, int ith, int nth, void* epilogue) {
  kernels::Int8GemmArgs args;
  args.x = static_cast<const uint8_t*>(dst->src[0]->data);
  args.w = static_cast<const uint8_t*>(dst->src[1]->data);
  args.m = dst->ne[1];
  args.n = dst->ne[0];
  args.k = dst->src[1]->ne[0];
  args.out = gemm_output(dst, epilogue);
  kernels::int8_gemm(args, ith, nth);
}

// dst = LayerNorm(src0 [K, M]) · src1 + src2 as the input rows of a bf16 (dst type bf16) or int8
// (dst type i8) product; userdata: eps as float bits.
static void norm_into_op(ggml_tensor* dst, int ith, int nth, void* eps_bits) {
  const ggml_tensor* x = dst->src[0];
  kernels::LayerNormRows rows;
  rows.x = static_cast<const float*>(x->data);
  rows.x_stride = static_cast<int64_t>(x->nb[1] / sizeof(float));
  rows.k = x->ne[0];
  rows.weight = static_cast<const float*>(dst->src[1]->data);
  rows.bias = static_cast<const float*>(dst->src[2]->data);
  const auto bits = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(eps_bits));
  std::memcpy(&rows.eps, &bits, sizeof(rows.eps));
  const int64_t n = ggml_nrows(x), per = (n + nth - 1) / nth;
  const int64_t begin = std::min(n, ith * per), end = std::min(n, begin + per);
  if (dst->type == GGML_TYPE_BF16) {
    kernels::layer_norm_to_bf16(rows, begin, end, static_cast<uint16_t*>(dst->data));
  } else {
    kernels::layer_norm_to_u8(rows, begin, end, static_cast<uint8_t*>(dst->data));
  }
}

// The activations of a packed layer as its kernel reads them: x [K, ...] -> rows of bf16 or of
// quantized bytes.
static ggml_tensor* kernel_input(ggml_context* ctx, ggml_tensor* x, Linear::Packed packed) {
  const int64_t k = x->ne[0], rows = ggml_nelements(x) / k;
  if (packed == Linear::Packed::Bf16) {
    // ggml_cast, not ggml_cpy into a new tensor: that tensor would be a leaf the allocator never frees
    return ggml_reshape_2d(ctx, ggml_cast(ctx, x, GGML_TYPE_BF16), k, rows);
  }
  if (!ggml_is_contiguous(x)) x = ggml_cont(ctx, x);
  ggml_tensor* args[] = {ggml_reshape_2d(ctx, x, k, rows)};
  return ggml_custom_4d(ctx, GGML_TYPE_I8, static_cast<int64_t>(kernels::int8_row_bytes(k)), rows, 1, 1, args, 1,
                        int8_quantize_op, GGML_N_TASKS_MAX, nullptr);
}

// The product of a packed layer: x [K, N, B] (f32, or already its kernel's input rows from
// layer_norm_into) -> [out, N, B], plus `residual` [out, N, B] when given.
static ggml_tensor* packed_linear(ggml_context* ctx, ggml_tensor* x, const Linear& layer, kernels::Epilogue epilogue,
                                  ggml_tensor* residual = nullptr) {
  const int64_t out = layer.weight->ne[1];
  ggml_tensor* input = x->type == GGML_TYPE_F32 ? kernel_input(ctx, x, layer.packed)
                                                : ggml_reshape_2d(ctx, x, x->ne[0], ggml_nrows(x));
  if (residual && !ggml_is_contiguous(residual)) residual = ggml_cont(ctx, residual);
  ggml_tensor* args[] = {input, layer.weight, layer.bias, residual};
  ggml_custom_op_t op = layer.packed == Linear::Packed::Bf16 ? bf16_gemm_op : int8_gemm_op;
  ggml_tensor* y = ggml_custom_4d(ctx, GGML_TYPE_F32, out, input->ne[1], 1, 1, args, 4, op, GGML_N_TASKS_MAX,
                                  reinterpret_cast<void*>(static_cast<intptr_t>(epilogue)));
  return ggml_reshape_4d(ctx, y, out, x->ne[1], x->ne[2], x->ne[3]);
}

ggml_tensor* mul_mat_f32(ggml_context* ctx, ggml_tensor* a, ggml_tensor* b) {
  if (!ggml_is_contiguous(a)) a = ggml_cont(ctx, a);
  if (!ggml_is_contiguous(b)) b = ggml_cont(ctx, b);
  ggml_tensor* product = ggml_mul_mat(ctx, a, b);
  ggml_prec_set_acc(product, GGML_PREC_F32);
  return product;
}

ggml_tensor* linear(ggml_context* ctx, ggml_tensor* x, const Linear& layer) {
  if (layer.on_own_kernel()) return packed_linear(ctx, x, layer, kernels::Epilogue::None);
  x = mul_mat_f32(ctx, layer.weight, x);
  return layer.bias ? ggml_add(ctx, x, layer.bias) : x;
}

ggml_tensor* linear_gelu(ggml_context* ctx, ggml_tensor* x, const Linear& layer) {
  if (layer.on_own_kernel()) return packed_linear(ctx, x, layer, kernels::Epilogue::GeluErf);
  return ggml_gelu_erf(ctx, linear(ctx, x, layer));
}

ggml_tensor* linear_residual(ggml_context* ctx, ggml_tensor* x, const Linear& layer, ggml_tensor* residual) {
  if (layer.on_own_kernel()) return packed_linear(ctx, x, layer, kernels::Epilogue::None, residual);
  return ggml_add(ctx, residual, linear(ctx, x, layer));
}

ggml_tensor* layer_norm_into(ggml_context* ctx, ggml_tensor* x, const LayerNorm& norm, float eps, const Linear& consumer) {
  if (!consumer.on_own_kernel() || !ggml_is_contiguous(x)) return layer_norm(ctx, x, norm, eps);
  const int64_t k = x->ne[0];
  const bool bf16 = consumer.packed == Linear::Packed::Bf16;
  const int64_t row = bf16 ? k : static_cast<int64_t>(kernels::int8_row_bytes(k));
  ggml_tensor* args[] = {x, norm.weight, norm.bias};
  uint32_t eps_bits;
  std::memcpy(&eps_bits, &eps, sizeof(eps_bits));
  return ggml_custom_4d(ctx, bf16 ? GGML_TYPE_BF16 : GGML_TYPE_I8, row, x->ne[1], x->ne[2], x->ne[3], args, 3,
                        norm_into_op, GGML_N_TASKS_MAX, reinterpret_cast<void*>(static_cast<uintptr_t>(eps_bits)));
}

// dst [D, Nq, B] = attention(src0 q [D, Nq, B], src1 k, src2 v [D, Nk, B]); userdata: the head count.
static void bf16_attention_op(ggml_tensor* dst, int ith, int nth, void* heads) {
  const auto operand = [](const ggml_tensor* t) {
    return kernels::AttentionOperand{static_cast<const float*>(t->data), static_cast<int64_t>(t->nb[1] / sizeof(float)),
                                     static_cast<int64_t>(t->nb[2] / sizeof(float))};
  };
  kernels::Bf16AttentionArgs args;
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
  kernels::bf16_attention(args, ith, nth);
}

static bool is_f32_rows(const ggml_tensor* t) { return t->type == GGML_TYPE_F32 && t->nb[0] == sizeof(float); }

ggml_tensor* attention(ggml_context* ctx, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads, bool own_kernel) {
  const int64_t width = q->ne[0], head_dim = width / heads, batch = q->ne[2];
  if (own_kernel && kernels::bf16_gemm_available() && kernels::bf16_attention_supports(head_dim) && is_f32_rows(q) &&
      is_f32_rows(k) && is_f32_rows(v)) {
    ggml_tensor* args[] = {q, k, v};
    return ggml_custom_4d(ctx, GGML_TYPE_F32, width, q->ne[1], batch, 1, args, 3, bf16_attention_op, GGML_N_TASKS_MAX,
                          reinterpret_cast<void*>(static_cast<intptr_t>(heads)));
  }
  // slices of a packed q/k/v product on a CPU without AVX-512 BF16
  if (!ggml_is_contiguous(q)) q = ggml_cont(ctx, q);
  if (!ggml_is_contiguous(k)) k = ggml_cont(ctx, k);
  if (!ggml_is_contiguous(v)) v = ggml_cont(ctx, v);
  const int64_t n_q = q->ne[1], n_kv = k->ne[1];
  // [D, N, B] -> [head_dim, heads, N, B] -> [head_dim, N, heads, B]
  q = ggml_permute(ctx, ggml_reshape_4d(ctx, q, head_dim, heads, n_q, batch), 0, 2, 1, 3);
  k = ggml_permute(ctx, ggml_reshape_4d(ctx, k, head_dim, heads, n_kv, batch), 0, 2, 1, 3);
  // v as [N_kv, head_dim, heads, B] so that it is the left operand of the second product
  v = ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_4d(ctx, v, head_dim, heads, n_kv, batch), 1, 2, 0, 3));

  ggml_tensor* scores = mul_mat_f32(ctx, k, q);  // [N_kv, N_q, heads, B]
  scores = ggml_soft_max_ext(ctx, scores, nullptr, 1.0f / std::sqrt(static_cast<float>(head_dim)), 0.0f);
  ggml_tensor* context = mul_mat_f32(ctx, v, scores);  // [head_dim, N_q, heads, B]
  context = ggml_cont(ctx, ggml_permute(ctx, context, 0, 2, 1, 3));  // [head_dim, heads, N_q, B]
  return ggml_reshape_3d(ctx, context, width, n_q, batch);
}

ggml_tensor* gelu_mlp(ggml_context* ctx, ggml_tensor* x, const Linear& up, const Linear& down) {
  return linear(ctx, linear_gelu(ctx, x, up), down);
}

ggml_tensor* conv_patches(ggml_context* ctx, ggml_tensor* images, ggml_tensor* kernel, int stride) {
  // [K*K*C, OW, OH, B]; f32 so that the input keeps full precision whatever the kernel's type
  ggml_tensor* columns = ggml_im2col(ctx, kernel, images, stride, stride, 0, 0, 1, 1, true, GGML_TYPE_F32);
  const int64_t patch_len = columns->ne[0], n_patches = columns->ne[1] * columns->ne[2], batch = columns->ne[3];
  ggml_tensor* kernel_rows = ggml_reshape_2d(ctx, kernel, patch_len, kernel->ne[3]);  // [K*K*C, D]
  ggml_tensor* out = mul_mat_f32(ctx, kernel_rows, ggml_reshape_2d(ctx, columns, patch_len, n_patches * batch));
  return ggml_reshape_3d(ctx, out, kernel->ne[3], n_patches, batch);
}

ggml_tensor* prepend_token(ggml_context* ctx, ggml_tensor* tokens, ggml_tensor* cls) {
  const int64_t width = tokens->ne[0], batch = tokens->ne[2];
  ggml_tensor* cls_per_item = ggml_repeat_4d(ctx, ggml_reshape_3d(ctx, cls, width, 1, 1), width, 1, batch, 1);
  return ggml_concat(ctx, cls_per_item, tokens, 1);
}

const char* own_kernel_name(const ggml_tensor* node) {
  if (node->op != GGML_OP_CUSTOM) return nullptr;
  // ggml_custom_4d stores its function pointer first in op_params (struct ggml_custom_op_params)
  ggml_custom_op_t fun = nullptr;
  std::memcpy(&fun, node->op_params, sizeof(fun));
  if (fun == bf16_gemm_op) return "bf16_gemm";
  if (fun == int8_gemm_op) return "int8_gemm";
  if (fun == int8_quantize_op) return "int8_quantize";
  if (fun == norm_into_op) return "norm_into";
  if (fun == bf16_attention_op) return "bf16_attention";
  return nullptr;
}

ggml_tensor* name(ggml_tensor* t, const std::string& prefix, int layer, const char* what) {
  return ggml_format_name(t, "%s.%d.%s", prefix.c_str(), layer, what);
}

ggml_tensor* name(ggml_tensor* t, const char* full_name) {
  return ggml_set_name(t, full_name);
}

}  // namespace vl::graph
