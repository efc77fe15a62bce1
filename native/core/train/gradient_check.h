#pragma once
// Finite-difference check of ggml's backward graphs: every entry of every trainable tensor of a
// tiny graph, analytic gradient (ggml_build_backward_expand) against a central difference of the
// f32 loss. test/model/train-gradients.test.ts states the tolerances.
#include <cstdint>
#include <string>
#include <vector>

namespace vl::train {

class BranchTrainer;
struct BranchExample;
class LlamaTrainer;
struct TokenWindows;

struct TensorGradientCheck {
  std::string name;
  int64_t entries = 0;
  float max_abs_error = 0;  // max over entries of |analytic - central difference|
  float max_abs_grad = 0;   // max over entries of |analytic|
};

struct GradientCheckReport {
  std::vector<TensorGradientCheck> tensors;
  float forward_error = 0;  // max |composition - ggml's inference op| on the graph's values
};

// The graphs the check knows: "layer_norm_gelu" (x → LayerNorm → Linear → GELU, the Q-Former's
// feed-forward shape; forward_error against ggml_norm / ggml_gelu_erf). Seeded random inputs.
// Throws vl::Error INVALID_ARGUMENT for another name.
GradientCheckReport check_gradients(const std::string& graph, uint32_t seed, float step, int threads);

}  // namespace vl::train

namespace vl::train {

// Every entry of every trainable tensor of a branch (BranchTrainer::params()): ggml's gradient of
// the batch's loss against its central difference (step `step`); forward_error is 0 (no reference op).
GradientCheckReport check_branch_gradients(BranchTrainer& trainer, const std::vector<BranchExample>& batch, float step,
                                           int threads);

// The same for every weight of a LLaMA under pretraining (LlamaTrainer::params()), on the windows' loss.
GradientCheckReport check_llama_gradients(LlamaTrainer& trainer, const TokenWindows& windows, float step, int threads);

}  // namespace vl::train
