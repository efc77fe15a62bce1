#include "core/train/llama_graph.h"

#include <cmath>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "gguf.h"

namespace vl::train {
namespace {

// An integer metadata value of any integer GGUF type, or `fallback` when absent.
int64_t int_key(const gguf_context* gguf, const std::string& key, int64_t fallback) {
  const int64_t id = gguf_find_key(gguf, key.c_str());
  if (id < 0) return fallback;
  switch (gguf_get_kv_type(gguf, id)) {
    case GGUF_TYPE_UINT32: return gguf_get_val_u32(gguf, id);
    case GGUF_TYPE_INT32: return gguf_get_val_i32(gguf, id);
    case GGUF_TYPE_UINT64: return static_cast<int64_t>(gguf_get_val_u64(gguf, id));
    case GGUF_TYPE_INT64: return gguf_get_val_i64(gguf, id);
    default: throw Error("INVALID_MODEL", "GGUF key " + key + " is not an integer");
  }
}

float float_key(const gguf_context* gguf, const std::string& key, float fallback) {
  const int64_t id = gguf_find_key(gguf, key.c_str());
  return id < 0 ? fallback : gguf_get_val_f32(gguf, id);
}

}  // namespace

FrozenLlama::FrozenLlama(const std::string& path) {
  if (!std::ifstream(path).good()) throw Error("FILE_NOT_FOUND", "No LLM GGUF at " + path);
  gguf_init_params params{/*no_alloc=*/true, &weights_ctx_};
  gguf_context* gguf = gguf_init_from_file(path.c_str(), params);
  if (!gguf) throw Error("INVALID_MODEL", path + " is not a GGUF file");
  try {
    const int64_t arch = gguf_find_key(gguf, "general.architecture");
    if (arch < 0 || std::string(gguf_get_val_str(gguf, arch)) != "llama") {
      throw Error("INVALID_MODEL", path + " is not a LLaMA GGUF (general.architecture must be \"llama\")");
    }
    hp_.n_embd = int_key(gguf, "llama.embedding_length", 0);
    hp_.n_layer = int_key(gguf, "llama.block_count", 0);
    hp_.n_head = int_key(gguf, "llama.attention.head_count", 0);
    hp_.n_head_kv = int_key(gguf, "llama.attention.head_count_kv", hp_.n_head);
    hp_.n_ctx_train = int_key(gguf, "llama.context_length", 2048);
    if (hp_.n_embd <= 0 || hp_.n_layer <= 0 || hp_.n_head <= 0) {
      throw Error("INVALID_MODEL", path + " lacks llama.embedding_length, block_count or attention.head_count");
    }
    hp_.n_rot = int_key(gguf, "llama.rope.dimension_count", hp_.n_embd / hp_.n_head);
    hp_.rms_eps = float_key(gguf, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    hp_.rope_freq_base = float_key(gguf, "llama.rope.freq_base", 10000.0f);

    token_embd_ = require("token_embd.weight");
    hp_.n_vocab = token_embd_->ne[1];
    output_norm_ = require("output_norm.weight");
    output_ = ggml_get_tensor(weights_ctx_, "output.weight");
    tied_ = output_ == nullptr;
    if (tied_) output_ = token_embd_;
    for (int64_t i = 0; i < hp_.n_layer; ++i) {
      const std::string b = "blk." + std::to_string(i) + ".";
      layers_.push_back({require(b + "attn_norm.weight"), require(b + "attn_q.weight"), require(b + "attn_k.weight"),
                         require(b + "attn_v.weight"), require(b + "attn_output.weight"), require(b + "ffn_norm.weight"),
                         require(b + "ffn_gate.weight"), require(b + "ffn_up.weight"), require(b + "ffn_down.weight")});
    }

    ggml_backend_buffer_type_t cpu = ggml_backend_dev_buffer_type(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
    weights_buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(weights_ctx_, cpu);
    if (!weights_buffer_) throw Error("NATIVE", "Could not allocate the LLM weights");
    std::ifstream file(path, std::ios::binary);
    const size_t data_offset = gguf_get_data_offset(gguf);
    std::vector<char> bytes;
    for (int64_t i = 0; i < gguf_get_n_tensors(gguf); ++i) {
      ggml_tensor* t = ggml_get_tensor(weights_ctx_, gguf_get_tensor_name(gguf, i));
      bytes.resize(ggml_nbytes(t));
      file.seekg(static_cast<std::streamoff>(data_offset + gguf_get_tensor_offset(gguf, i)));
      file.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!file) throw Error("INVALID_MODEL", path + " is truncated (tensor " + ggml_get_name(t) + ")");
      ggml_backend_tensor_set(t, bytes.data(), 0, bytes.size());
    }
  } catch (...) {
    gguf_free(gguf);
    this->~FrozenLlama();
    throw;
  }
  gguf_free(gguf);
}

FrozenLlama::~FrozenLlama() {
  if (weights_buffer_) ggml_backend_buffer_free(weights_buffer_);
  if (weights_ctx_) ggml_free(weights_ctx_);
  weights_buffer_ = nullptr;
  weights_ctx_ = nullptr;
}

ggml_tensor* FrozenLlama::require(const std::string& name) const {
  ggml_tensor* t = ggml_get_tensor(weights_ctx_, name.c_str());
  if (!t) throw Error("MISSING_TENSOR", "The LLM GGUF has no tensor " + name);
  return t;
}

void FrozenLlama::for_each_weight(const std::function<void(ggml_tensor*&)>& visit) {
  visit(token_embd_);
  for (LlamaLayer& l : layers_) {
    for (ggml_tensor** slot : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) visit(*slot);
  }
  visit(output_norm_);
  if (tied_) {
    output_ = token_embd_;
  } else {
    visit(output_);
  }
}

ggml_tensor* FrozenLlama::embed(ggml_context* ctx, ggml_tensor* ids) const {
  return ggml_get_rows(ctx, token_embd_, ids);
}

ggml_tensor* FrozenLlama::forward(ggml_context* ctx, ggml_tensor* x, ggml_tensor* positions) const {
  const int64_t n_tokens = x->ne[1];
  const int64_t head_dim = hp_.n_embd / hp_.n_head;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // libllama's LLaMA: rope mode NORMAL; no YaRN (ext_factor 0), beta_fast 32, beta_slow 1.
  auto rope = [&](ggml_tensor* t) {
    return ggml_rope_ext(ctx, t, positions, nullptr, static_cast<int>(hp_.n_rot), GGML_ROPE_TYPE_NORMAL,
                         static_cast<int>(hp_.n_ctx_train), hp_.rope_freq_base, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
  };
  for (const LlamaLayer& l : layers_) {
    ggml_tensor* h = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp_.rms_eps), l.attn_norm);
    ggml_tensor* q = rope(ggml_reshape_3d(ctx, ggml_mul_mat(ctx, l.wq, h), head_dim, hp_.n_head, n_tokens));
    ggml_tensor* k = rope(ggml_reshape_3d(ctx, ggml_mul_mat(ctx, l.wk, h), head_dim, hp_.n_head_kv, n_tokens));
    ggml_tensor* v = ggml_reshape_3d(ctx, ggml_mul_mat(ctx, l.wv, h), head_dim, hp_.n_head_kv, n_tokens);
    q = ggml_permute(ctx, q, 0, 2, 1, 3);                   // [hd, T, H]
    k = ggml_cont(ctx, ggml_permute(ctx, k, 0, 2, 1, 3));   // [hd, T, Hkv]
    v = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));   // [T, hd, Hkv]
    ggml_tensor* kq = ggml_scale(ctx, ggml_mul_mat(ctx, k, q), kq_scale);  // [T_k, T_q, H]
    // The causal mask as DIAG_MASK_INF, not a soft_max mask operand: ggml differentiates the former.
    kq = ggml_soft_max(ctx, ggml_diag_mask_inf(ctx, kq, 0));
    ggml_tensor* kqv = ggml_mul_mat(ctx, v, kq);             // [hd, T_q, H]
    kqv = ggml_cont(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3));
    x = ggml_add(ctx, x, ggml_mul_mat(ctx, l.wo, ggml_reshape_2d(ctx, kqv, hp_.n_embd, n_tokens)));

    h = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp_.rms_eps), l.ffn_norm);
    ggml_tensor* gate = ggml_silu(ctx, ggml_mul_mat(ctx, l.ffn_gate, h));
    x = ggml_add(ctx, x, ggml_mul_mat(ctx, l.ffn_down, ggml_mul(ctx, gate, ggml_mul_mat(ctx, l.ffn_up, h))));
  }
  x = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp_.rms_eps), output_norm_);
  return ggml_mul_mat(ctx, output_, x);
}

ggml_tensor* answer_cross_entropy(ggml_context* ctx, ggml_tensor* logits, ggml_tensor* rows, ggml_tensor* one_hot) {
  // ggml_cross_entropy_loss averages over its rows, i.e. over the answer tokens only.
  return ggml_cross_entropy_loss(ctx, ggml_get_rows(ctx, logits, rows), one_hot);
}

}  // namespace vl::train
