#include "core/train/llama_trainer.h"

#include <algorithm>

#include "core/train/cpu_run.h"
#include "ggml-cpp.h"

namespace vl::train {
namespace {

ggml_tensor* input(ggml_context* ctx, ggml_type type, int64_t ne0, int64_t ne1 = 1) {
  ggml_tensor* t = ggml_new_tensor_2d(ctx, type, ne0, ne1);
  ggml_set_input(t);
  return t;
}

void check_windows(const TokenWindows& w, const LlamaHparams& hp) {
  if (w.length < 1 || w.count() < 1 || static_cast<int64_t>(w.tokens.size()) != w.count() * (w.length + 1)) {
    throw Error("INVALID_ARGUMENT", "windows must be one or more runs of length + 1 tokens");
  }
  if (w.length > hp.n_ctx_train) {
    throw Error("INVALID_ARGUMENT", "a window of " + std::to_string(w.length) + " tokens is longer than the model's context (" +
                                        std::to_string(hp.n_ctx_train) + ")");
  }
  for (int32_t t : w.tokens) {
    if (t < 0 || t >= hp.n_vocab) {
      throw Error("INVALID_ARGUMENT", "token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(hp.n_vocab) + ")");
    }
  }
}

}  // namespace

// One graph over a set of windows: each window's logits and next-token cross-entropy, their mean,
// and (when asked) the backward pass and the AdamW update.
class LlamaTrainer::WindowsGraph {
 public:
  WindowsGraph(const LlamaTrainer& t, const TokenWindows& w, bool with_grads, const AdamWStep* adamw, int threads,
               const AbortFlag* abort)
      : scratch_(GraphScratch::kMaxNodes * static_cast<size_t>(std::max<int64_t>(1, w.count()))) {
    const LlamaHparams& hp = t.hparams();
    check_windows(w, hp);
    ggml_context* ctx = scratch_.ctx;
    const int64_t n = w.length;
    positions_.resize(n);
    for (int64_t i = 0; i < n; ++i) positions_[i] = static_cast<int32_t>(i);
    ggml_tensor* loss = nullptr;
    for (int64_t k = 0; k < w.count(); ++k) {
      const int32_t* tokens = w.tokens.data() + k * (n + 1);
      Window win{input(ctx, GGML_TYPE_I32, n), input(ctx, GGML_TYPE_I32, n), input(ctx, GGML_TYPE_F32, hp.n_vocab, n),
                 std::vector<int32_t>(tokens, tokens + n), std::vector<float>(hp.n_vocab * n, 0.0f)};
      for (int64_t i = 0; i < n; ++i) win.one_hot_values[i * hp.n_vocab + tokens[i + 1]] = 1.0f;
      // ggml_cross_entropy_loss is the mean over the window's positions; the step's loss, the mean of the windows'.
      ggml_tensor* logits = t.llm_.forward(ctx, t.llm_.embed(ctx, win.ids), win.positions);
      ggml_tensor* part = ggml_scale(ctx, ggml_cross_entropy_loss(ctx, logits, win.one_hot), 1.0f / static_cast<float>(w.count()));
      loss = loss ? ggml_add(ctx, loss, part) : part;
      windows_.push_back(std::move(win));
    }
    step_ = std::make_unique<StepGraph>(ctx, scratch_.max_nodes, loss, *t.tensors_, with_grads, adamw, threads, abort);
  }

  float compute() {
    for (const Window& w : windows_) {
      ggml_backend_tensor_set(w.ids, w.id_values.data(), 0, ggml_nbytes(w.ids));
      ggml_backend_tensor_set(w.positions, positions_.data(), 0, ggml_nbytes(w.positions));
      ggml_backend_tensor_set(w.one_hot, w.one_hot_values.data(), 0, ggml_nbytes(w.one_hot));
    }
    return step_->compute();
  }

  std::vector<std::vector<float>> gradients() const { return step_->gradients(); }

 private:
  struct Window {
    ggml_tensor *ids, *positions, *one_hot;  // I32 [n], I32 [n], F32 [n_vocab, n]
    std::vector<int32_t> id_values;
    std::vector<float> one_hot_values;
  };
  GraphScratch scratch_;
  std::vector<int32_t> positions_;
  std::vector<Window> windows_;
  std::unique_ptr<StepGraph> step_;
};

LlamaTrainer::LlamaTrainer(const std::string& path) : llm_(path) {
  std::vector<const ggml_tensor*> sources;
  llm_.for_each_weight([&](ggml_tensor*& slot) { sources.push_back(slot); });
  tensors_ = std::make_unique<TrainableTensors>(sources);
  size_t i = 0;
  llm_.for_each_weight([&](ggml_tensor*& slot) { slot = tensors_->params()[i++]; });

  GgufFile file(path);
  if (gguf_find_key(file.gguf, "train.steps") >= 0) tensors_->restore(file, path);
  metadata_.reset(gguf_init_empty());
  gguf_set_kv(metadata_.get(), file.gguf);
  TrainableTensors::remove_keys(metadata_.get());  // the model's metadata only
}

float LlamaTrainer::gradients(const TokenWindows& windows, int threads, const AbortFlag* abort,
                              std::vector<std::vector<float>>& grads) const {
  WindowsGraph g(*this, windows, true, nullptr, threads, abort);
  const float loss = g.compute();
  grads = g.gradients();
  return loss;
}

std::function<float()> LlamaTrainer::loss_function(const TokenWindows& windows, int threads) const {
  auto graph = std::make_shared<WindowsGraph>(*this, windows, false, nullptr, threads, nullptr);
  return [graph] { return graph->compute(); };
}

float LlamaTrainer::step(const TokenWindows& windows, const AdamWStep& hp, int threads, const AbortFlag* abort) {
  WindowsGraph g(*this, windows, true, &hp, threads, abort);
  const float loss = g.compute();
  tensors_->count_step();
  return loss;
}

gguf_context* LlamaTrainer::model_file(bool with_moments) const {
  gguf_context* gguf = gguf_init_empty();
  gguf_set_kv(gguf, metadata_.get());
  if (with_moments) {
    tensors_->add_to(gguf);
  } else {
    for (ggml_tensor* p : params()) gguf_add_tensor(gguf, p);
  }
  return gguf;
}

void LlamaTrainer::save_model(const std::string& path) const {
  gguf_context_ptr gguf(model_file(false));
  write_atomically(gguf.get(), path);
}

void LlamaTrainer::save_checkpoint(const std::string& path) const {
  gguf_context_ptr gguf(model_file(true));
  write_atomically(gguf.get(), path);
}

}  // namespace vl::train
