#include "core/train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace vl::train {
namespace {

constexpr const char* kKeySteps = "train.steps";

}  // namespace

GgufFile::GgufFile(const std::string& path) {
  if (!std::ifstream(path).good()) throw Error("FILE_NOT_FOUND", "No GGUF at " + path);
  gguf = gguf_init_from_file(path.c_str(), {/*no_alloc=*/false, &data});
  if (!gguf) throw Error("INVALID_MODEL", path + " is not a GGUF file");
}

GgufFile::~GgufFile() {
  gguf_free(gguf);
  if (data) ggml_free(data);
}

void write_atomically(const gguf_context* gguf, const std::string& path) {
  const std::string temporary = path + ".partial";
  if (!gguf_write_to_file(gguf, temporary.c_str(), false)) {
    std::remove(temporary.c_str());
    throw Error("NATIVE", "Could not write " + temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw Error("NATIVE", "Could not rename " + temporary + " to " + path);
  }
}

std::vector<float> f32_values(const ggml_tensor* t) {
  std::vector<uint8_t> bytes(ggml_nbytes(t));
  if (t->buffer) {
    ggml_backend_tensor_get(t, bytes.data(), 0, bytes.size());
  } else {
    std::memcpy(bytes.data(), t->data, bytes.size());
  }
  std::vector<float> out(ggml_nelements(t));
  if (t->type == GGML_TYPE_F32) {
    std::memcpy(out.data(), bytes.data(), bytes.size());
  } else {
    const ggml_type_traits* traits = ggml_get_type_traits(t->type);
    if (!traits->to_float) throw Error("INVALID_MODEL", std::string("Cannot train tensor ") + t->name + " of its type");
    traits->to_float(bytes.data(), out.data(), ggml_nelements(t));
  }
  return out;
}

TrainableTensors::TrainableTensors(const std::vector<const ggml_tensor*>& sources) {
  ctx_ = ggml_init({ggml_tensor_overhead() * sources.size() * 3, nullptr, /*no_alloc=*/true});
  for (const ggml_tensor* source : sources) {
    auto copy = [&](const std::string& name) {
      ggml_tensor* t = ggml_new_tensor(ctx_, GGML_TYPE_F32, GGML_MAX_DIMS, source->ne);
      ggml_set_name(t, name.c_str());
      return t;
    };
    params_.push_back(copy(source->name));
    ggml_set_param(params_.back());
    adam_m_.push_back(copy(std::string(source->name) + ".adam_m"));
    adam_v_.push_back(copy(std::string(source->name) + ".adam_v"));
  }
  ggml_backend_buffer_type_t cpu = ggml_backend_dev_buffer_type(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
  buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(ctx_, cpu);
  if (!buffer_) {
    ggml_free(ctx_);
    throw Error("NATIVE", "Could not allocate the trainable tensors");
  }
  ggml_backend_buffer_clear(buffer_, 0);  // moments start at zero
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::vector<float> values = f32_values(sources[i]);
    ggml_backend_tensor_set(params_[i], values.data(), 0, ggml_nbytes(params_[i]));
  }
}

TrainableTensors::~TrainableTensors() {
  if (buffer_) ggml_backend_buffer_free(buffer_);
  if (ctx_) ggml_free(ctx_);
}

std::vector<std::pair<ggml_tensor*, std::vector<float>>> TrainableTensors::add_adamw(ggml_context* ctx, ggml_cgraph* graph,
                                                                                     const AdamWStep& hp) const {
  // ggml_opt_step_adamw's parameters: alpha, beta1, beta2, eps, wd, 1/(1-beta1^t), 1/(1-beta2^t).
  const double t = static_cast<double>(steps_ + 1);
  const float beta1h = static_cast<float>(1.0 / (1.0 - std::pow(hp.beta1, t)));
  const float beta2h = static_cast<float>(1.0 / (1.0 - std::pow(hp.beta2, t)));
  ggml_tensor* decayed = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 7);
  ggml_tensor* plain = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 7);
  ggml_set_input(decayed);
  ggml_set_input(plain);
  for (size_t i = 0; i < params_.size(); ++i) {
    ggml_tensor* p = params_[i];
    ggml_build_forward_expand(graph, ggml_opt_step_adamw(ctx, p, ggml_graph_get_grad(graph, p), adam_m_[i], adam_v_[i],
                                                         ggml_n_dims(p) >= 2 ? decayed : plain));
  }
  return {{decayed, {hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weight_decay, beta1h, beta2h}},
          {plain, {hp.lr, hp.beta1, hp.beta2, hp.eps, 0.0f, beta1h, beta2h}}};
}

void TrainableTensors::add_to(gguf_context* gguf) const {
  gguf_set_val_u64(gguf, kKeySteps, static_cast<uint64_t>(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    for (ggml_tensor* t : {params_[i], adam_m_[i], adam_v_[i]}) gguf_add_tensor(gguf, t);
  }
}

void TrainableTensors::restore(const GgufFile& file, const std::string& path) {
  const int64_t steps_key = gguf_find_key(file.gguf, kKeySteps);
  if (steps_key < 0) throw Error("INVALID_MODEL", path + " is not a training checkpoint");
  std::vector<std::pair<ggml_tensor*, const ggml_tensor*>> copies;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (ggml_tensor* t : {params_[i], adam_m_[i], adam_v_[i]}) {
      const ggml_tensor* saved = ggml_get_tensor(file.data, t->name);
      if (!saved || saved->type != GGML_TYPE_F32 || !ggml_are_same_shape(saved, t)) {
        throw Error("INVALID_MODEL", path + " has no f32 tensor " + t->name + " of this model's shape");
      }
      copies.emplace_back(t, saved);
    }
  }
  for (auto& [t, saved] : copies) ggml_backend_tensor_set(t, saved->data, 0, ggml_nbytes(t));
  steps_ = static_cast<int64_t>(gguf_get_val_u64(file.gguf, steps_key));
}

void TrainableTensors::remove_keys(gguf_context* gguf) { gguf_remove_key(gguf, kKeySteps); }

std::vector<std::pair<std::string, std::vector<float>>> TrainableTensors::snapshot() const {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const auto* group : {&params_, &adam_m_, &adam_v_}) {
    for (ggml_tensor* t : *group) out.emplace_back(t->name, f32_values(t));
  }
  return out;
}

void TrainableTensors::set_entry(size_t param, size_t index, float value) {
  ggml_backend_tensor_set(params_.at(param), &value, index * sizeof(float), sizeof(float));
}

float TrainableTensors::entry(size_t param, size_t index) const {
  float value = 0;
  ggml_backend_tensor_get(params_.at(param), &value, index * sizeof(float), sizeof(float));
  return value;
}

StepGraph::StepGraph(ggml_context* ctx, size_t max_nodes, ggml_tensor* loss, const TrainableTensors& tensors, bool with_grads,
                     const AdamWStep* adamw, int threads, const AbortFlag* abort)
    : tensors_(tensors), run_(threads, abort), threads_(threads), loss_(loss) {
  ggml_set_output(loss_);
  ggml_set_loss(loss_);
  graph_ = ggml_new_graph_custom(ctx, max_nodes, with_grads);
  ggml_build_forward_expand(graph_, loss_);
  if (with_grads) {
    ggml_build_backward_expand(ctx, graph_, nullptr);
    for (ggml_tensor* p : tensors.params()) {
      ggml_tensor* grad = ggml_graph_get_grad(graph_, p);
      if (!grad) throw Error("NATIVE", std::string("No gradient reaches ") + p->name);
      ggml_set_output(grad);
    }
  }
  const int gradient_nodes = ggml_graph_n_nodes(graph_);
  if (adamw) adamw_inputs_ = tensors.add_adamw(ctx, graph_, *adamw);
  run_.allocate(graph_);
  // Two views of the allocated graph's nodes: before the AdamW steps, and the steps.
  gradients_ = node_range(ctx, 0, gradient_nodes);
  update_ = node_range(ctx, gradient_nodes, ggml_graph_n_nodes(graph_));
}

ggml_cgraph* StepGraph::node_range(ggml_context* ctx, int first, int last) const {
  ggml_cgraph* range = ggml_new_graph_custom(ctx, std::max(1, last - first), false);
  for (int i = first; i < last; ++i) ggml_graph_add_node(range, ggml_graph_node(graph_, i));
  return range;
}

float StepGraph::compute() {
  if (ggml_tensor* seed = ggml_graph_get_grad(graph_, loss_)) {
    // d loss / d loss = 1. Not ggml_graph_reset: it would also zero the AdamW moments.
    const float one = 1.0f;
    ggml_backend_tensor_set(seed, &one, 0, sizeof(one));
  }
  for (auto& [tensor, values] : adamw_inputs_) ggml_backend_tensor_set(tensor, values.data(), 0, ggml_nbytes(tensor));
  run_.compute(gradients_);
  if (ggml_graph_n_nodes(update_) > 0) CpuRun(threads_, nullptr).compute(update_);
  float loss = 0;
  ggml_backend_tensor_get(loss_, &loss, 0, sizeof(loss));
  return loss;
}

std::vector<std::vector<float>> StepGraph::gradients() const {
  std::vector<std::vector<float>> out;
  for (ggml_tensor* p : tensors_.params()) {
    out.emplace_back(ggml_nelements(p));
    ggml_backend_tensor_get(ggml_graph_get_grad(graph_, p), out.back().data(), 0, ggml_nbytes(p));
  }
  return out;
}

}  // namespace vl::train
