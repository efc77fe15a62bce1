#pragma once
// A frozen LLaMA forward graph of our own, for training the projector side: libllama gives no
// gradient with respect to its input embeddings, so the loss of the media soft prompts needs a
// graph that ggml's automatic differentiation (ggml_build_backward_expand) can run backwards.
// It reads the same GGUF as libllama and computes the same logits (test/model/train-llama.test.ts).
//
// Only ops whose backward this ggml release implements: RMS_NORM, MUL_MAT, ROPE (mode NORMAL),
// DIAG_MASK_INF + SOFT_MAX without a mask tensor (ggml has no gradient for a mask operand),
// SILU, MUL, ADD, GET_ROWS, CROSS_ENTROPY_LOSS.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"

namespace vl::train {

struct LlamaHparams {
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_vocab = 0;
  int64_t n_rot = 0;         // rope dimensions (llama.rope.dimension_count, default head size)
  int64_t n_ctx_train = 0;   // llama.context_length
  float rms_eps = 1e-5f;     // llama.attention.layer_norm_rms_epsilon
  float rope_freq_base = 10000.0f;
};

struct LlamaLayer {
  ggml_tensor *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *ffn_gate, *ffn_up, *ffn_down;
};

// The weights of a LLaMA GGUF in one CPU backend buffer. Frozen for stages 1/2; LlamaTrainer
// (llama_trainer.h) swaps trainable f32 copies into its weight slots to pretrain it.
class FrozenLlama {
 public:
  // Throws vl::Error FILE_NOT_FOUND, INVALID_MODEL (not a llama GGUF) or MISSING_TENSOR.
  explicit FrozenLlama(const std::string& path);
  ~FrozenLlama();
  FrozenLlama(const FrozenLlama&) = delete;
  FrozenLlama& operator=(const FrozenLlama&) = delete;

  const LlamaHparams& hparams() const { return hp_; }

  // Token embeddings of `ids` ([n_embd, n]), looked up in the graph.
  ggml_tensor* embed(ggml_context* ctx, ggml_tensor* ids) const;

  // Logits [n_vocab, n_tokens] of input embeddings [n_embd, n_tokens] at positions 0..n_tokens-1
  // (`positions`: I32 [n_tokens], filled by the caller), causal attention as libllama's LLaMA.
  ggml_tensor* forward(ggml_context* ctx, ggml_tensor* embeddings, ggml_tensor* positions) const;

  // Visits every weight slot once, in the GGUF's naming: token_embd, each block's attn_norm, attn_q,
  // attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down, then output_norm and output
  // (unless tied: then the output layer follows whatever token_embd's slot now holds).
  void for_each_weight(const std::function<void(ggml_tensor*&)>& visit);

 private:
  ggml_tensor* require(const std::string& name) const;

  LlamaHparams hp_;
  ggml_context* weights_ctx_ = nullptr;
  ggml_backend_buffer_t weights_buffer_ = nullptr;
  ggml_tensor* token_embd_ = nullptr;
  ggml_tensor* output_norm_ = nullptr;
  ggml_tensor* output_ = nullptr;
  bool tied_ = false;  // no output.weight: the output layer is token_embd
  std::vector<LlamaLayer> layers_;
};

// Next-token cross-entropy over the answer positions only, as the original (HF LlamaForCausalLM
// with labels -100 outside the answer): logits at position i predict labels[i + 1]; the loss is
// the mean over the labelled positions. `targets`: I32 [n] row indices of the predicting
// positions, `one_hot`: F32 [n_vocab, n] their labels. Returns a scalar.
ggml_tensor* answer_cross_entropy(ggml_context* ctx, ggml_tensor* logits, ggml_tensor* rows, ggml_tensor* one_hot);

}  // namespace vl::train
