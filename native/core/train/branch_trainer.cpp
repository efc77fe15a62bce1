#include "core/train/branch_trainer.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>

#include "core/gguf_names.h"
#include "core/projector_loader.h"
#include "core/train/cpu_run.h"
#include "core/train/llama_loss.h"
#include "ggml-cpp.h"
#include "gguf.h"

namespace vl::train {
namespace {

constexpr const char* kKeyBranch = "train.branch";
constexpr const char* kKeyState = "train.state";

const char* branch_name(Branch b) { return b == Branch::Video ? "video" : "audio"; }

// Every trainable weight slot of a branch head, in a fixed order.
void for_each_trainable(graph::QFormer& qformer, ggml_tensor*& positions, graph::Linear& proj,
                        const graph::WeightVisitor& visit) {
  graph::for_each_weight(qformer, visit);
  visit(positions);
  graph::for_each_weight(proj, visit);
}

ggml_tensor* input(ggml_context* ctx, int64_t ne0, int64_t ne1, int64_t ne2 = 1) {
  ggml_tensor* t = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, ne0, ne1, ne2);
  ggml_set_input(t);
  return t;
}

}  // namespace

// One graph over a batch: each example's branch head and frozen-LLaMA loss, the batch's loss, and (when
// asked) the backward pass and one AdamW node per trainable tensor.
class BranchTrainer::BatchGraph {
 public:
  BatchGraph(const BranchTrainer& t, const std::vector<BranchExample>& batch, bool with_grads, const AdamWStep* adamw,
             const StepDropout& dropout, int threads, const AbortFlag* abort)
      : scratch_(t.nodes_per_example() * std::max<size_t>(1, batch.size())) {
    if (batch.empty()) throw Error("INVALID_ARGUMENT", "A batch needs at least one example");
    ggml_context* ctx = scratch_.ctx;
    size_t labelled = 0;
    for (const BranchExample& e : batch) {
      ggml_tensor* features = t.features_input(ctx, e);
      features_.emplace_back(features, &e.features);
      ggml_tensor* media = t.head(ctx, features, dropout.p > 0 ? dropout_masks(dropout) : nullptr);
      prompts_.push_back(std::make_unique<MediaPromptLoss>(ctx, *t.llm_, media, e.tokens, e.media_offset, e.labels));
      labelled += prompts_.back()->labelled();
    }
    // The original's batch loss: the mean over every labelled position of the batch (HF's
    // CrossEntropyLoss over the padded batch), i.e. each example's mean weighted by its labels.
    ggml_tensor* loss = nullptr;
    for (const auto& prompt : prompts_) {
      ggml_tensor* part = ggml_scale(ctx, prompt->loss(), static_cast<float>(prompt->labelled()) / static_cast<float>(labelled));
      loss = loss ? ggml_add(ctx, loss, part) : part;
    }
    // Room for every example's prompt.
    step_ = std::make_unique<StepGraph>(ctx, scratch_.max_nodes, loss, *t.tensors_, with_grads, adamw, threads, abort);
  }

  float compute() {
    for (auto& [tensor, values] : features_) ggml_backend_tensor_set(tensor, values->data(), 0, ggml_nbytes(tensor));
    for (auto& prompt : prompts_) prompt->set_inputs();
    fill_dropout_masks();
    return step_->compute();
  }

  std::vector<std::vector<float>> gradients() const { return step_->gradients(); }

 private:
  // x · mask with a mask input per dropout site, filled by fill_dropout_masks().
  graph::TrainingGraphScope::Dropout dropout_masks(const StepDropout& dropout) {
    dropout_ = dropout;
    return [this](ggml_context* ctx, ggml_tensor* x) {
      ggml_tensor* mask = ggml_new_tensor(ctx, GGML_TYPE_F32, GGML_MAX_DIMS, x->ne);
      ggml_set_input(mask);
      masks_.push_back(mask);
      return ggml_mul(ctx, x, mask);
    };
  }

  // Each entry kept with probability 1 - p and scaled by 1 / (1 - p) (nn.Dropout), from a stream
  // of its own per site so that the masks depend only on the seed and the graph.
  void fill_dropout_masks() const {
    const double threshold = static_cast<double>(dropout_.p) * 4294967296.0;
    const float kept = 1.0f / (1.0f - dropout_.p);
    std::vector<float> values;
    for (size_t k = 0; k < masks_.size(); ++k) {
      std::mt19937 rng(dropout_.seed ^ static_cast<uint32_t>(0x9E3779B9u * (k + 1)));
      values.resize(ggml_nelements(masks_[k]));
      for (float& v : values) v = static_cast<double>(rng()) < threshold ? 0.0f : kept;
      ggml_backend_tensor_set(masks_[k], values.data(), 0, ggml_nbytes(masks_[k]));
    }
  }

  GraphScratch scratch_;
  std::unique_ptr<StepGraph> step_;
  std::vector<std::unique_ptr<MediaPromptLoss>> prompts_;
  std::vector<std::pair<ggml_tensor*, const std::vector<float>*>> features_;
  StepDropout dropout_;
  std::vector<ggml_tensor*> masks_;
};

ggml_tensor* BranchTrainer::features_input(ggml_context* ctx, const BranchExample& e) const {
  const BranchShape& s = shape_;
  if (e.units < 1 || e.units > s.max_units) {
    throw Error("INVALID_ARGUMENT", "An example has " + std::to_string(e.units) + " units; the branch takes 1.." +
                                        std::to_string(s.max_units));
  }
  if (static_cast<int64_t>(e.features.size()) != e.units * s.unit_rows * s.feature_width) {
    throw Error("DIMENSION_MISMATCH", std::string(s.media ? "media" : "features") + " must hold units x " +
                                          std::to_string(s.unit_rows) + " x " + std::to_string(s.feature_width) + " values");
  }
  if (s.media) {
    // frames [S, S, 3, T] (PyTorch [T, 3, S, S]) or fbank [frames, mel, 1, M]
    const int64_t channels = branch_ == Branch::Video ? 3 : 1;
    ggml_tensor* t = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, s.feature_width, s.unit_rows / channels, channels, e.units);
    ggml_set_input(t);
    return t;
  }
  return branch_ == Branch::Video ? input(ctx, s.feature_width, s.unit_rows, e.units) : input(ctx, s.feature_width, e.units);
}

ggml_tensor* BranchTrainer::head(ggml_context* ctx, ggml_tensor* x, const graph::TrainingGraphScope::Dropout& dropout) const {
  const graph::TrainingGraphScope training(dropout);
  ggml_tensor* media;
  if (branch_ == Branch::Video) {
    if (shape_.media) {
      // The BLIP-2 Q-Former drops out only when trained: a frozen one runs in eval mode, as the original's.
      const graph::TrainingGraphScope blip2(unfreeze_.qformer ? dropout : nullptr);
      x = graph::name(graph::build_qformer(ctx, video_.qformer, graph::build_eva_vit(ctx, video_.vit, x)), "qformer");
    }
    media = graph::build_video_head(ctx, video_, x);
  } else {
    if (shape_.media) x = graph::build_imagebind_audio(ctx, audio_.imagebind, x).embedding;
    media = graph::build_audio_head(ctx, audio_, x);
  }
  return ggml_reshape_2d(ctx, media, media->ne[0], media->ne[1]);  // [E, queries]
}

size_t BranchTrainer::nodes_per_example() const {
  // room for the encoder layers' forward and backward nodes beside the LLaMA graph's
  constexpr size_t kNodesPerEncoderLayer = 2048;
  if (!shape_.media) return GraphScratch::kMaxNodes;
  const int layers = branch_ == Branch::Video ? graph::layers_of(video_) : graph::layers_of(audio_);
  return GraphScratch::kMaxNodes + kNodesPerEncoderLayer * static_cast<size_t>(layers);
}

std::vector<float> BranchTrainer::soft_prompt(const BranchExample& example, int threads) const {
  GraphScratch scratch(nodes_per_example());
  ggml_tensor* features = features_input(scratch.ctx, example);
  ggml_tensor* rows = head(scratch.ctx, features, nullptr);
  ggml_set_output(rows);
  ggml_cgraph* graph = ggml_new_graph_custom(scratch.ctx, scratch.max_nodes, false);
  ggml_build_forward_expand(graph, rows);
  CpuRun run(threads, nullptr);
  run.allocate(graph);
  ggml_backend_tensor_set(features, example.features.data(), 0, ggml_nbytes(features));
  run.compute(graph);
  std::vector<float> out(ggml_nelements(rows));
  ggml_backend_tensor_get(rows, out.data(), 0, ggml_nbytes(rows));
  return out;
}

BranchTrainer::BranchTrainer(std::shared_ptr<const FrozenLlama> llm, const std::string& projector, Branch branch,
                             Unfreeze unfreeze)
    : llm_(std::move(llm)), branch_(branch), unfreeze_(unfreeze) {
  if (branch == Branch::Audio && unfreeze.qformer) {
    throw Error("INVALID_ARGUMENT", "The audio branch has no BLIP-2 Q-Former to unfreeze");
  }
  ProjectorLoader file(projector);
  const int llm_width = static_cast<int>(llm_->hparams().n_embd);
  // The weight slots of the branch as loaded: what is trained, and the rest of the graph's.
  std::vector<ggml_tensor**> trainable, frozen;
  auto into = [](std::vector<ggml_tensor**>& slots) { return [&slots](ggml_tensor*& slot) { slots.push_back(&slot); }; };
  if (branch == Branch::Video) {
    video_ = unfreeze.any() ? graph::load_vision_branch(file, llm_width) : graph::load_video_head(file, llm_width);
    for_each_trainable(video_.video_qformer, video_.frame_pos_embd, video_.proj, into(trainable));
    const int64_t frame_queries = file.size(gguf_name(KEY_QFORMER_QUERIES, "qformer"));
    shape_ = {video_.video_qformer.queries, frame_queries, video_.video_qformer.encoder_width, video_.max_frames};
    if (unfreeze.any()) {
      graph::for_each_weight(video_.vit, into(unfreeze.encoder ? trainable : frozen));
      graph::for_each_weight(video_.qformer, into(unfreeze.qformer ? trainable : frozen));
      shape_ = {shape_.queries, 3 * video_.vit.image_size, video_.vit.image_size, shape_.max_units, /*media=*/true};
    }
  } else {
    audio_ = unfreeze.any() ? graph::load_audio_branch(file, llm_width) : graph::load_audio_head(file, llm_width);
    for_each_trainable(audio_.audio_qformer, audio_.pos_embd, audio_.proj, into(trainable));
    shape_ = {audio_.audio_qformer.queries, 1, audio_.audio_qformer.encoder_width, audio_.max_clips};
    if (unfreeze.encoder) {
      graph::for_each_weight(audio_.imagebind, into(trainable));
      const graph::ImageBindAudio& ib = audio_.imagebind;
      shape_ = {shape_.queries, ib.mel_bins, ib.target_frames, shape_.max_units, /*media=*/true};
    }
  }
  ggml_backend_t cpu = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
  ggml_context_ptr loaded_ctx;
  ggml_backend_buffer_ptr loaded_buffer;
  try {
    file.load(cpu, loaded_ctx, loaded_buffer);
  } catch (...) {
    ggml_backend_free(cpu);
    throw;
  }
  ggml_backend_free(cpu);

  // f32 copies: the trainable tensors with AdamW's two moments of each, and the frozen tensors.
  std::vector<const ggml_tensor*> sources;
  for (ggml_tensor** slot : trainable) sources.push_back(*slot);
  tensors_ = std::make_unique<TrainableTensors>(sources);
  for (size_t i = 0; i < trainable.size(); ++i) *trainable[i] = tensors_->params()[i];
  if (frozen.empty()) return;
  frozen_ctx_ = ggml_init({ggml_tensor_overhead() * frozen.size(), nullptr, /*no_alloc=*/true});
  for (ggml_tensor** slot : frozen) {
    frozen_.push_back(ggml_new_tensor(frozen_ctx_, GGML_TYPE_F32, GGML_MAX_DIMS, (*slot)->ne));
    ggml_set_name(frozen_.back(), (*slot)->name);
  }
  ggml_backend_buffer_type_t cpu_buft = ggml_backend_dev_buffer_type(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
  frozen_buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(frozen_ctx_, cpu_buft);
  if (!frozen_buffer_) {
    ggml_free(frozen_ctx_);
    throw Error("NATIVE", "Could not allocate the frozen tensors");
  }
  for (size_t i = 0; i < frozen.size(); ++i) {
    const std::vector<float> values = f32_values(*frozen[i]);
    ggml_backend_tensor_set(frozen_[i], values.data(), 0, ggml_nbytes(frozen_[i]));
    *frozen[i] = frozen_[i];
  }
}

BranchTrainer::~BranchTrainer() {
  if (frozen_buffer_) ggml_backend_buffer_free(frozen_buffer_);
  if (frozen_ctx_) ggml_free(frozen_ctx_);
}

float BranchTrainer::loss(const std::vector<BranchExample>& batch, int threads, const AbortFlag* abort) const {
  return BatchGraph(*this, batch, false, nullptr, StepDropout{}, threads, abort).compute();
}

std::function<float()> BranchTrainer::loss_function(const std::vector<BranchExample>& batch, int threads) const {
  auto graph = std::make_shared<BatchGraph>(*this, batch, false, nullptr, StepDropout{}, threads, nullptr);
  return [graph] { return graph->compute(); };
}

float BranchTrainer::gradients(const std::vector<BranchExample>& batch, int threads, const AbortFlag* abort,
                               std::vector<std::vector<float>>& grads) const {
  BatchGraph g(*this, batch, true, nullptr, StepDropout{}, threads, abort);
  const float loss = g.compute();
  grads = g.gradients();
  return loss;
}

float BranchTrainer::step(const std::vector<BranchExample>& batch, const AdamWStep& hp, const StepDropout& dropout,
                         int threads, const AbortFlag* abort) {
  if (!(dropout.p >= 0 && dropout.p < 1)) throw Error("INVALID_ARGUMENT", "dropout must be in [0, 1)");
  BatchGraph g(*this, batch, true, &hp, dropout, threads, abort);
  const float loss = g.compute();
  tensors_->count_step();
  return loss;
}

void BranchTrainer::save_checkpoint(const std::string& path, const std::string& state) const {
  gguf_context_ptr owned(gguf_init_empty());
  gguf_context* gguf = owned.get();
  gguf_set_val_str(gguf, kKeyBranch, branch_name(branch_));
  gguf_set_val_str(gguf, kKeyState, state.c_str());
  tensors_->add_to(gguf);
  write_atomically(gguf, path);
}

std::string BranchTrainer::restore_checkpoint(const std::string& path) {
  GgufFile file(path);
  const int64_t branch_key = gguf_find_key(file.gguf, kKeyBranch);
  const int64_t state_key = gguf_find_key(file.gguf, kKeyState);
  if (branch_key < 0 || state_key < 0) throw Error("INVALID_MODEL", path + " is not a training checkpoint");
  if (std::string(gguf_get_val_str(file.gguf, branch_key)) != branch_name(branch_)) {
    throw Error("INVALID_MODEL", path + " is a checkpoint of the " + gguf_get_val_str(file.gguf, branch_key) + " branch");
  }
  tensors_->restore(file, path);
  return gguf_get_val_str(file.gguf, state_key);
}

void BranchTrainer::export_projector(const std::string& source, const std::string& out) const {
  GgufFile file(source);
  gguf_context_ptr owned(gguf_init_empty());
  gguf_context* gguf = owned.get();
  gguf_set_kv(gguf, file.gguf);
  for (int64_t i = 0; i < gguf_get_n_tensors(file.gguf); ++i) {
    const char* name = gguf_get_tensor_name(file.gguf, i);
    const ggml_tensor* trained = nullptr;
    for (ggml_tensor* p : params()) {
      if (std::strcmp(p->name, name) == 0) trained = p;
    }
    gguf_add_tensor(gguf, trained ? trained : ggml_get_tensor(file.data, name));
  }
  write_atomically(gguf, out);
}

}  // namespace vl::train
