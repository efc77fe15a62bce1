#include "core/train/llama_loss.h"

#include <algorithm>
#include <memory>

#include "core/train/cpu_run.h"

namespace vl::train {
namespace {

ggml_tensor* input(ggml_context* ctx, ggml_type type, int64_t ne0, int64_t ne1 = 1) {
  ggml_tensor* t = ne1 == 1 && type == GGML_TYPE_I32 ? ggml_new_tensor_1d(ctx, type, ne0) : ggml_new_tensor_2d(ctx, type, ne0, ne1);
  ggml_set_input(t);
  return t;
}

std::vector<int32_t> iota_positions(size_t n) {
  std::vector<int32_t> positions(n);
  for (size_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(i);
  return positions;
}

void check_tokens(const FrozenLlama& llm, const std::vector<int32_t>& tokens) {
  for (int32_t t : tokens) {
    if (t < 0 || t >= llm.hparams().n_vocab) {
      throw Error("INVALID_ARGUMENT", "Token " + std::to_string(t) + " is outside the vocabulary (0.." +
                                          std::to_string(llm.hparams().n_vocab - 1) + ")");
    }
  }
}

void check_prompt(const FrozenLlama& llm, const std::vector<int32_t>& tokens, int64_t media_offset, int64_t n_media,
                  const std::vector<int32_t>& labels) {
  const size_t n_tokens = tokens.size();
  if (labels.size() != n_tokens) throw Error("INVALID_ARGUMENT", "labels must have one entry per position");
  if (media_offset < 0 || media_offset + n_media > static_cast<int64_t>(n_tokens)) {
    throw Error("INVALID_ARGUMENT", "the media rows do not fit in the prompt at mediaOffset");
  }
  for (size_t i = 0; i < n_tokens; ++i) {
    const bool is_media = static_cast<int64_t>(i) >= media_offset && static_cast<int64_t>(i) < media_offset + n_media;
    if (!is_media) check_tokens(llm, {tokens[i]});
    if (labels[i] != -100 && (i == 0 || labels[i] < 0 || labels[i] >= llm.hparams().n_vocab)) {
      throw Error("INVALID_ARGUMENT", "label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
                                          " is neither -100 nor a token that a previous position predicts");
    }
  }
}

void check_projection(const FrozenLlama& llm, const ProjectedPrompt& e) {
  const int64_t n_embd = llm.hparams().n_embd;
  if (e.media_width <= 0 || e.media.empty() || e.media.size() % e.media_width != 0) {
    throw Error("INVALID_ARGUMENT", "media must hold whole rows of mediaWidth values");
  }
  if (e.proj_weight.size() != static_cast<size_t>(n_embd * e.media_width) || e.proj_bias.size() != static_cast<size_t>(n_embd)) {
    throw Error("DIMENSION_MISMATCH", "llama_proj must be [" + std::to_string(n_embd) + " x " +
                                          std::to_string(e.media_width) + "] with a bias of " + std::to_string(n_embd));
  }
}

}  // namespace

std::vector<float> prompt_logits(const FrozenLlama& llm, const std::vector<int32_t>& tokens, int threads) {
  if (tokens.empty()) throw Error("INVALID_ARGUMENT", "The prompt has no tokens");
  check_tokens(llm, tokens);
  GraphScratch scratch;
  ggml_context* ctx = scratch.ctx;
  const int64_t n = static_cast<int64_t>(tokens.size());
  ggml_tensor* ids = input(ctx, GGML_TYPE_I32, n);
  ggml_tensor* positions = input(ctx, GGML_TYPE_I32, n);
  ggml_tensor* logits = llm.forward(ctx, llm.embed(ctx, ids), positions);
  ggml_set_output(logits);
  ggml_cgraph* graph = ggml_new_graph_custom(ctx, GraphScratch::kMaxNodes, false);
  ggml_build_forward_expand(graph, logits);
  CpuRun run(threads, nullptr);
  run.allocate(graph);
  ggml_backend_tensor_set(ids, tokens.data(), 0, ggml_nbytes(ids));
  const std::vector<int32_t> pos = iota_positions(tokens.size());
  ggml_backend_tensor_set(positions, pos.data(), 0, ggml_nbytes(positions));
  run.compute(graph);
  std::vector<float> out(ggml_nelements(logits));
  ggml_backend_tensor_get(logits, out.data(), 0, ggml_nbytes(logits));
  return out;
}

MediaPromptLoss::MediaPromptLoss(ggml_context* ctx, const FrozenLlama& llm, ggml_tensor* media_rows,
                                 const std::vector<int32_t>& tokens, int64_t media_offset, const std::vector<int32_t>& labels) {
  const LlamaHparams& hp = llm.hparams();
  const int64_t n_tokens = static_cast<int64_t>(tokens.size()), n_media = media_rows->ne[1];
  if (media_rows->ne[0] != hp.n_embd) throw Error("DIMENSION_MISMATCH", "media rows are not n_embd wide");
  check_prompt(llm, tokens, media_offset, n_media, labels);
  // Logits at i predict labels[i + 1] (HF's shift): the rows of the labelled positions minus one.
  for (int64_t i = 1; i < n_tokens; ++i) {
    if (labels[i] != -100) rows_.push_back(static_cast<int32_t>(i - 1));
  }
  if (rows_.empty()) throw Error("INVALID_ARGUMENT", "No position has a label (all are -100): the loss is undefined");
  token_ids_ = tokens;
  text_mask_.assign(n_tokens, 1.0f);
  for (int64_t i = media_offset; i < media_offset + n_media; ++i) {
    token_ids_[i] = 0;
    text_mask_[i] = 0.0f;
  }
  positions_ = iota_positions(tokens.size());
  labels_one_hot_.assign(hp.n_vocab * rows_.size(), 0.0f);
  for (size_t r = 0; r < rows_.size(); ++r) labels_one_hot_[r * hp.n_vocab + labels[rows_[r] + 1]] = 1.0f;

  ids_ = input(ctx, GGML_TYPE_I32, n_tokens);
  mask_ = input(ctx, GGML_TYPE_F32, 1, n_tokens);  // 0 at the media positions
  pos_ = input(ctx, GGML_TYPE_I32, n_tokens);
  row_ids_ = input(ctx, GGML_TYPE_I32, static_cast<int64_t>(rows_.size()));
  one_hot_ = input(ctx, GGML_TYPE_F32, hp.n_vocab, static_cast<int64_t>(rows_.size()));
  ggml_tensor* text = ggml_mul(ctx, llm.embed(ctx, ids_), mask_);
  // ACC, not CONCAT: ggml differentiates ACC (CONCAT has no backward in this release).
  ggml_tensor* embeddings = ggml_acc(ctx, text, media_rows, text->nb[1], text->nb[2], text->nb[3],
                                     static_cast<size_t>(media_offset) * text->nb[1]);
  loss_ = answer_cross_entropy(ctx, llm.forward(ctx, embeddings, pos_), row_ids_, one_hot_);
}

void MediaPromptLoss::set_inputs() const {
  ggml_backend_tensor_set(ids_, token_ids_.data(), 0, ggml_nbytes(ids_));
  ggml_backend_tensor_set(mask_, text_mask_.data(), 0, ggml_nbytes(mask_));
  ggml_backend_tensor_set(pos_, positions_.data(), 0, ggml_nbytes(pos_));
  ggml_backend_tensor_set(row_ids_, rows_.data(), 0, ggml_nbytes(row_ids_));
  ggml_backend_tensor_set(one_hot_, labels_one_hot_.data(), 0, ggml_nbytes(one_hot_));
}

LossAndGrads projected_prompt_loss(const FrozenLlama& llm, const ProjectedPrompt& e, bool with_grads, int threads,
                                   const AbortFlag* abort) {
  check_projection(llm, e);
  const LlamaHparams& hp = llm.hparams();
  const int64_t n_media = static_cast<int64_t>(e.media.size()) / e.media_width;
  GraphScratch scratch;
  ggml_context* ctx = scratch.ctx;
  ggml_tensor* media = input(ctx, GGML_TYPE_F32, e.media_width, n_media);
  ggml_tensor* weight = input(ctx, GGML_TYPE_F32, e.media_width, hp.n_embd);
  ggml_tensor* bias = input(ctx, GGML_TYPE_F32, hp.n_embd);
  if (with_grads) {
    ggml_set_param(weight);
    ggml_set_param(bias);
  }
  ggml_tensor* projected = ggml_add(ctx, ggml_mul_mat(ctx, weight, media), bias);  // [n_embd, n_media]
  const MediaPromptLoss prompt(ctx, llm, projected, e.tokens, e.media_offset, e.labels);
  ggml_tensor* loss = prompt.loss();
  ggml_set_output(loss);
  ggml_set_loss(loss);

  ggml_cgraph* graph = ggml_new_graph_custom(ctx, GraphScratch::kMaxNodes, with_grads);
  ggml_build_forward_expand(graph, loss);
  if (with_grads) {
    ggml_build_backward_expand(ctx, graph, nullptr);
    ggml_set_output(ggml_graph_get_grad(graph, weight));
    ggml_set_output(ggml_graph_get_grad(graph, bias));
  }
  CpuRun run(threads, abort);
  run.allocate(graph);
  if (with_grads) ggml_graph_reset(graph);  // d loss / d loss = 1, every other gradient 0

  ggml_backend_tensor_set(media, e.media.data(), 0, ggml_nbytes(media));
  ggml_backend_tensor_set(weight, e.proj_weight.data(), 0, ggml_nbytes(weight));
  ggml_backend_tensor_set(bias, e.proj_bias.data(), 0, ggml_nbytes(bias));
  prompt.set_inputs();
  run.compute(graph);
  LossAndGrads out;
  ggml_backend_tensor_get(loss, &out.loss, 0, sizeof(float));
  if (with_grads) {
    out.grad_weight.resize(e.proj_weight.size());
    out.grad_bias.resize(e.proj_bias.size());
    ggml_backend_tensor_get(ggml_graph_get_grad(graph, weight), out.grad_weight.data(), 0, out.grad_weight.size() * sizeof(float));
    ggml_backend_tensor_get(ggml_graph_get_grad(graph, bias), out.grad_bias.data(), 0, out.grad_bias.size() * sizeof(float));
  }
  return out;
}

}  // namespace vl::train
