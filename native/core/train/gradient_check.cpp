#include "core/train/gradient_check.h"

#include <cmath>
#include <functional>
#include <random>

#include "core/train/branch_trainer.h"
#include "core/train/llama_trainer.h"
#include "core/train/cpu_run.h"
#include "core/train/diff_ops.h"

namespace vl::train {
namespace {

struct Leaf {
  ggml_tensor* tensor;
  std::vector<float> values;
};

float read_scalar(ggml_tensor* t) {
  float v = 0;
  ggml_backend_tensor_get(t, &v, 0, sizeof(float));
  return v;
}

float max_abs_difference(ggml_tensor* a, ggml_tensor* b) {
  std::vector<float> va(ggml_nelements(a)), vb(ggml_nelements(b));
  ggml_backend_tensor_get(a, va.data(), 0, ggml_nbytes(a));
  ggml_backend_tensor_get(b, vb.data(), 0, ggml_nbytes(b));
  float m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

}  // namespace

GradientCheckReport check_gradients(const std::string& graph_name, uint32_t seed, float step, int threads) {
  if (graph_name != "layer_norm_gelu") throw Error("INVALID_ARGUMENT", "No gradient-check graph named " + graph_name);
  constexpr int64_t D = 8, N = 3, H = 12;
  constexpr float kEps = 1e-12f;  // the Q-Former's LayerNorm eps
  GraphScratch scratch;
  ggml_context* ctx = scratch.ctx;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Leaf> leaves;
  auto leaf = [&](const char* name, int64_t ne0, int64_t ne1, float mean, bool trainable) {
    ggml_tensor* t = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, ne1);
    ggml_set_name(t, name);
    ggml_set_input(t);
    ggml_set_output(t);  // kept alive: the allocator would reuse an input's memory after its last reader
    if (trainable) ggml_set_param(t);
    std::vector<float> values(ne0 * ne1);
    for (float& v : values) v = mean + normal(rng);
    leaves.push_back({t, std::move(values)});
    return t;
  };
  ggml_tensor* x = leaf("x", D, N, 0.5f, true);
  ggml_tensor* ln_w = leaf("ln.weight", D, 1, 1.0f, true);
  ggml_tensor* ln_b = leaf("ln.bias", D, 1, 0.0f, true);
  ggml_tensor* w = leaf("dense.weight", D, H, 0.0f, true);
  ggml_tensor* b = leaf("dense.bias", H, 1, 0.0f, true);
  ggml_tensor* r = leaf("readout", H, N, 0.0f, false);  // loss = Σ out · readout

  ggml_tensor* h = ggml_add(ctx, ggml_mul_mat(ctx, w, layer_norm(ctx, x, ln_w, ln_b, kEps)), b);
  ggml_tensor* out = gelu_erf(ctx, h);
  ggml_set_output(out);
  ggml_tensor* loss = ggml_sum(ctx, ggml_mul(ctx, out, r));
  ggml_set_loss(loss);
  ggml_set_output(loss);
  // One graph for both sides: a tensor allocated by one graph keeps that graph's memory layout in
  // another, so a separate forward graph would clobber values the backward pass reads.
  ggml_cgraph* graph = ggml_new_graph_custom(ctx, GraphScratch::kMaxNodes, true);
  ggml_build_forward_expand(graph, loss);
  ggml_build_backward_expand(ctx, graph, nullptr);
  for (Leaf& l : leaves) {
    if (l.tensor->flags & GGML_TENSOR_FLAG_PARAM) ggml_set_output(ggml_graph_get_grad(graph, l.tensor));
  }
  CpuRun run(threads, nullptr);
  run.allocate(graph);
  ggml_graph_reset(graph);  // before the inputs: d loss / d loss = 1, the other gradients 0
  for (Leaf& l : leaves) ggml_backend_tensor_set(l.tensor, l.values.data(), 0, ggml_nbytes(l.tensor));
  run.compute(graph);

  GradientCheckReport report;
  std::vector<std::vector<float>> analytic;
  for (Leaf& l : leaves) {
    if (!(l.tensor->flags & GGML_TENSOR_FLAG_PARAM)) continue;
    analytic.emplace_back(l.values.size());
    ggml_backend_tensor_get(ggml_graph_get_grad(graph, l.tensor), analytic.back().data(), 0, l.values.size() * sizeof(float));
  }
  {
    // ggml's inference ops on the same (still allocated) inputs, in a graph of its own.
    GraphScratch ref_scratch;
    ggml_context* rctx = ref_scratch.ctx;
    ggml_tensor* normed = ggml_add(rctx, ggml_mul(rctx, ggml_norm(rctx, x, kEps), ln_w), ln_b);
    ggml_tensor* reference = ggml_gelu_erf(rctx, ggml_add(rctx, ggml_mul_mat(rctx, w, normed), b));
    ggml_set_output(reference);
    ggml_cgraph* ref_graph = ggml_new_graph(rctx);
    ggml_build_forward_expand(ref_graph, reference);
    CpuRun ref_run(threads, nullptr);
    ref_run.allocate(ref_graph);
    ref_run.compute(ref_graph);
    report.forward_error = max_abs_difference(out, reference);
  }
  auto loss_at = [&](Leaf& l, size_t i, float value) {
    ggml_graph_reset(graph);
    ggml_backend_tensor_set(l.tensor, &value, i * sizeof(float), sizeof(float));
    run.compute(graph);
    ggml_backend_tensor_set(l.tensor, &l.values[i], i * sizeof(float), sizeof(float));
    return read_scalar(loss);
  };
  size_t k = 0;
  for (Leaf& l : leaves) {
    if (!(l.tensor->flags & GGML_TENSOR_FLAG_PARAM)) continue;
    TensorGradientCheck c{ggml_get_name(l.tensor), static_cast<int64_t>(l.values.size())};
    for (size_t i = 0; i < l.values.size(); ++i) {
      const float numeric = (loss_at(l, i, l.values[i] + step) - loss_at(l, i, l.values[i] - step)) / (2 * step);
      c.max_abs_error = std::max(c.max_abs_error, std::abs(analytic[k][i] - numeric));
      c.max_abs_grad = std::max(c.max_abs_grad, std::abs(analytic[k][i]));
    }
    report.tensors.push_back(c);
    ++k;
  }
  return report;
}

namespace {

// Every entry of every trainable tensor of a trainer (BranchTrainer or LlamaTrainer): `analytic`
// against a central difference of `loss` (a graph built once, recomputed on the current values).
template <class Trainer>
GradientCheckReport check_entries(Trainer& trainer, const std::vector<std::vector<float>>& analytic,
                                  const std::function<float()>& loss, float step) {
  auto loss_at = [&](size_t p, size_t i, float value) {
    trainer.set_entry(p, i, value);
    return loss();
  };
  GradientCheckReport report;
  for (size_t p = 0; p < trainer.params().size(); ++p) {
    TensorGradientCheck c{ggml_get_name(trainer.params()[p]), static_cast<int64_t>(analytic[p].size())};
    for (size_t i = 0; i < analytic[p].size(); ++i) {
      const float value = trainer.entry(p, i);
      const float numeric = (loss_at(p, i, value + step) - loss_at(p, i, value - step)) / (2 * step);
      trainer.set_entry(p, i, value);
      c.max_abs_error = std::max(c.max_abs_error, std::abs(analytic[p][i] - numeric));
      c.max_abs_grad = std::max(c.max_abs_grad, std::abs(analytic[p][i]));
    }
    report.tensors.push_back(c);
  }
  return report;
}

}  // namespace

GradientCheckReport check_branch_gradients(BranchTrainer& trainer, const std::vector<BranchExample>& batch, float step,
                                           int threads) {
  std::vector<std::vector<float>> analytic;
  trainer.gradients(batch, threads, nullptr, analytic);
  return check_entries(trainer, analytic, trainer.loss_function(batch, threads), step);
}

GradientCheckReport check_llama_gradients(LlamaTrainer& trainer, const TokenWindows& windows, float step, int threads) {
  std::vector<std::vector<float>> analytic;
  trainer.gradients(windows, threads, nullptr, analytic);
  return check_entries(trainer, analytic, trainer.loss_function(windows, threads), step);
}

}  // namespace vl::train
