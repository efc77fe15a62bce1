#pragma once
// Runs the frozen LLaMA graph (llama_graph.h) forward, and forward + backward for the loss of
// llama_proj-projected media embeddings placed in a token prompt. The foundation of the trainer.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/train/llama_graph.h"

namespace vl::train {

// Logits [n_tokens][n_vocab] of a token prompt, every position.
std::vector<float> prompt_logits(const FrozenLlama& llm, const std::vector<int32_t>& tokens, int threads);

// The answer loss of one prompt whose media rows ([n_embd, n_media], from llama_proj or a Q-Former
// branch) replace the token embeddings at [media_offset, media_offset + n_media): declares the
// prompt's inputs in `ctx`; set_inputs() fills them once the graph is allocated. Throws
// INVALID_ARGUMENT on labels or tokens that do not fit the prompt or the vocabulary.
class MediaPromptLoss {
 public:
  MediaPromptLoss(ggml_context* ctx, const FrozenLlama& llm, ggml_tensor* media_rows, const std::vector<int32_t>& tokens,
                  int64_t media_offset, const std::vector<int32_t>& labels);
  ggml_tensor* loss() const { return loss_; }  // a scalar: the mean over the labelled positions
  size_t labelled() const { return rows_.size(); }
  void set_inputs() const;

 private:
  std::vector<int32_t> token_ids_, positions_, rows_;
  std::vector<float> text_mask_, labels_one_hot_;
  ggml_tensor *ids_, *mask_, *pos_, *row_ids_, *one_hot_, *loss_;
};

// One example: `tokens` fills every position except [media_offset, media_offset + n_media), where
// the projected media rows go; `labels` has one entry per position (-100: no loss), the original's.
struct ProjectedPrompt {
  std::vector<float> media;        // [n_media][in]
  int64_t media_width = 0;         // in
  std::vector<float> proj_weight;  // [n_embd][in] (nn.Linear.weight, row-major)
  std::vector<float> proj_bias;    // [n_embd]
  std::vector<int32_t> tokens;     // [n_tokens]; values at the media positions are ignored
  int64_t media_offset = 0;
  std::vector<int32_t> labels;     // [n_tokens]
};

struct LossAndGrads {
  float loss = 0;
  std::vector<float> grad_weight;  // like proj_weight
  std::vector<float> grad_bias;    // like proj_bias
};

// The answer cross-entropy of `example` and, when `with_grads`, its gradients with respect to
// llama_proj's weight and bias. Throws INVALID_ARGUMENT on inconsistent sizes or no labelled token.
LossAndGrads projected_prompt_loss(const FrozenLlama& llm, const ProjectedPrompt& example, bool with_grads,
                                   int threads, const AbortFlag* abort);

}  // namespace vl::train
