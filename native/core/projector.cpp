#include "core/projector.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/kernels/ggml_ops.h"
#include "core/projector_loader.h"

namespace vl {

// ---------------------------------------------------------------------------------------------
// Model

// `gpu` null: the CPU.
static ggml_backend_ptr init_backend(ggml_backend_dev_t gpu) {
  ggml_backend_t backend = gpu ? ggml_backend_dev_init(gpu, nullptr) : ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
  if (!backend) throw Error("NATIVE", "no ggml backend could be initialised");
  return ggml_backend_ptr(backend);
}

static bool is_cpu(ggml_backend_t backend) {
  ggml_backend_dev_t dev = ggml_backend_get_device(backend);
  return dev && ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU;
}

std::shared_ptr<ProjectorModel> ProjectorModel::load(const std::string& path, const ProjectorOptions& options) {
  ensure_backends_loaded();
  ProjectorLoader file(path);
  auto model = std::make_shared<ProjectorModel>();
  ProjectorInfo& info = model->info_;
  info.llm_width = file.size("vl.llm_width");
  info.file_type = file.u32("general.file_type");
  info.has_vision = file.boolean("vl.has_vision");
  info.has_audio = file.boolean("vl.has_audio");
  if (!info.has_vision && !info.has_audio) {
    throw Error("INVALID_MODEL", "'" + path + "' holds neither a vision nor an audio branch (vl.has_vision and "
                                              "vl.has_audio are both false)");
  }

  int layers = 0;  // transformer layers of the larger branch graph, to size graphs
  if (info.has_vision) {
    const graph::VisionBranch& vb = model->vision_.emplace(graph::load_vision_branch(file, info.llm_width));
    info.image_size = vb.vit.image_size;
    info.video_queries = vb.video_qformer.queries;
    info.max_frames = vb.max_frames;
    info.image_mean = vb.image_mean;
    info.image_std = vb.image_std;
    layers = std::max(layers, graph::layers_of(vb));
  }
  if (info.has_audio) {
    const graph::AudioBranch& ab = model->audio_.emplace(graph::load_audio_branch(file, info.llm_width));
    info.audio_queries = ab.audio_qformer.queries;
    info.max_clips = ab.max_clips;
    info.sample_rate = ab.sample_rate;
    info.mel_bins = ab.imagebind.mel_bins;
    info.target_frames = ab.imagebind.target_frames;
    info.clip_seconds = ab.clip_seconds;
    info.fbank_mean = ab.fbank_mean;
    info.fbank_std = ab.fbank_std;
    layers = std::max(layers, graph::layers_of(ab));
  }
  // A Q-Former layer is ~70 nodes and leaves, an EVA or ImageBind block fewer; the rest is small.
  model->max_graph_nodes_ = 128 * layers + 1024;

  model->primary_ = init_backend(choose_gpu(options.gpu));
  if (!is_cpu(model->primary_.get())) model->cpu_ = init_backend(nullptr);
  const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_backend_threads(model->cpu_backend(), threads);
  info.backend = ggml_backend_name(model->primary_.get());

  file.load(model->primary_.get(), model->weights_ctx_, model->weights_buffer_);
  info.weight_bytes = ggml_backend_buffer_get_size(model->weights_buffer_.get());
  if (is_cpu(model->primary_.get())) info.own_kernel_layers = kernels::pack_linear_weights(model->weights_ctx_.get());
  return model;
}

std::vector<ggml_backend_t> ProjectorModel::backends() const {
  std::vector<ggml_backend_t> list = {primary_.get()};
  if (cpu_) list.push_back(cpu_.get());
  return list;
}

// ---------------------------------------------------------------------------------------------
// State

// One branch graph: a single f32 input, a single output and the branch's named stage nodes.
struct ProjectorState::Branch {
  std::array<int64_t, 4> input_ne;
  const float* input;
  std::function<ggml_tensor*(ggml_context*, ggml_tensor*)> build;
  std::vector<graph::StageNode> nodes;
  float* output;  // receives the whole output tensor
};

ProjectorState::ProjectorState(std::shared_ptr<const ProjectorModel> model) : model_(std::move(model)) {
  std::vector<ggml_backend_t> backends = model_->backends();
  const size_t nodes = static_cast<size_t>(model_->max_graph_nodes());
  sched_.reset(ggml_backend_sched_new(backends.data(), nullptr, static_cast<int>(backends.size()), nodes,
                                      /*parallel=*/false, /*op_offload=*/false));
  if (!sched_) throw Error("NATIVE", "could not create the graph scheduler");
  graph_meta_.resize(ggml_tensor_overhead() * nodes + ggml_graph_overhead_custom(nodes, false));
}

static StageTensor read_node(ggml_tensor* t, int rank) {
  StageTensor out;
  for (int i = rank - 1; i >= 0; --i) out.shape.push_back(t->ne[i]);
  out.data.resize(static_cast<size_t>(ggml_nelements(t)));
  ggml_backend_tensor_get(t, out.data.data(), 0, ggml_nbytes(t));
  return out;
}

static bool poll_abort(void* flag) { return static_cast<const std::atomic<bool>*>(flag)->load(); }

static bool abort_requested(const EncodeParams& params) { return params.abort && params.abort->load(); }

// VIDEO_LLAMA_PROFILE=1: time every graph node and print the total per operation after each stage
// (stderr). Observing each node makes the scheduler compute node by node, so totals include a
// thread synchronisation per node; for finding hot spots, not for benchmarks.
class NodeProfiler {
 public:
  static bool enabled() {
    static const bool on = std::getenv("VIDEO_LLAMA_PROFILE") != nullptr;
    return on;
  }
  void start() { last_ = std::chrono::steady_clock::now(); }
  void record(const ggml_tensor* t) {
    const auto now = std::chrono::steady_clock::now();
    std::string op = ggml_op_desc(t);
    if (t->op == GGML_OP_CPY || t->op == GGML_OP_MUL_MAT) op += std::string("(") + ggml_type_name(t->src[0]->type) + ")";
    if (const char* own = kernels::op_name(t)) op = own;
    totals_[op] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }
  // Prints the totals since the last report and starts over.
  void report(const char* stage) {
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (const auto& [op, seconds] : totals_) {
      rows.emplace_back(seconds, op);
      total += seconds;
    }
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "[profile] %s: %.3f s\n", stage, total);
    for (const auto& [seconds, op] : rows) std::fprintf(stderr, "[profile]   %-24s %8.3f s\n", op.c_str(), seconds);
    totals_.clear();
  }

 private:
  std::map<std::string, double> totals_;
  std::chrono::steady_clock::time_point last_;
};

// The progress stages of a branch, in order.
static std::vector<const char*> progress_stages(const std::vector<graph::StageNode>& nodes) {
  std::vector<const char*> stages;
  for (const graph::StageNode& node : nodes) {
    if (node.progress) stages.push_back(node.progress);
  }
  return stages;
}

// A layer's output node: graph::name(x, "<prefix>.blk", il, "out") in every encoder.
static bool ends_layer(const ggml_tensor* t) {
  const size_t n = std::strlen(t->name);
  return n > 4 && std::strcmp(t->name + n - 4, ".out") == 0;
}

// Watches a branch graph's compute through the scheduler's eval callback (asked before each node
// whether it wants that node's result): reports progress when a stage's last node is done and
// stops the compute at the next watched node after an abort. Each watched node splits the compute
// there (the scheduler computes the nodes between two watched ones as one graph; on the CPU each
// part starts its worker threads anew, which costs a scheduler time slice per thread on a busy
// machine), so it watches only the stage nodes, and layer ends too when a backend other than the
// CPU runs nodes (the CPU backend polls the abort flag between nodes itself; others do not).
class ComputeWatch {
 public:
  ComputeWatch(ggml_cgraph* gf, const std::vector<graph::StageNode>& nodes, const EncodeParams& params,
               bool watch_layers)
      : params_(params), stages_(progress_stages(nodes)) {
    for (int i = 0; i < ggml_graph_n_nodes(gf); ++i) {
      ggml_tensor* t = ggml_graph_node(gf, i);
      if (watch_layers && ends_layer(t)) watched_.emplace(t, nullptr);
      for (const graph::StageNode& node : nodes) {
        if (node.progress && std::strcmp(t->name, node.name) == 0) watched_[t] = node.progress;
      }
    }
    if (NodeProfiler::enabled()) profiler_.emplace().start();
  }

  static bool callback(ggml_tensor* t, bool ask, void* self) {
    auto* watch = static_cast<ComputeWatch*>(self);
    return ask ? watch->wants(t) : watch->computed(t);
  }

  bool aborted() const { return aborted_; }
  // The stage being computed (the last one once all are done).
  const char* stage() const { return stages_[std::min(done_, stages_.size() - 1)]; }

 private:
  // After an abort, every node: a graph split by backends stops at the first node of each split.
  bool wants(const ggml_tensor* t) const { return aborted_ || profiler_ || watched_.count(t) != 0; }

  // Returns false to stop the compute.
  bool computed(const ggml_tensor* t) {
    if (profiler_) profiler_->record(t);
    if (aborted_ || abort_requested(params_)) {
      aborted_ = true;
      return false;
    }
    const auto it = watched_.find(t);
    if (it != watched_.end() && it->second) {
      if (profiler_) profiler_->report(it->second);
      ++done_;
      if (params_.on_progress) params_.on_progress({it->second, static_cast<int>(done_), static_cast<int>(stages_.size())});
    }
    return true;
  }

  const EncodeParams& params_;
  std::vector<const char*> stages_;
  std::unordered_map<const ggml_tensor*, const char*> watched_;  // node -> the stage it ends (null: a layer end)
  size_t done_ = 0;
  bool aborted_ = false;
  std::optional<NodeProfiler> profiler_;
};

void ProjectorState::run_branch(const Branch& branch, const EncodeParams& params, EncodeResult& result) {
  if (abort_requested(params)) {
    throw Error("ABORTED", std::string("encoding was aborted before ") + progress_stages(branch.nodes).front());
  }
  ggml_context_ptr ctx(ggml_init({graph_meta_.size(), graph_meta_.data(), /*no_alloc=*/true}));
  ggml_tensor* input = ggml_new_tensor(ctx.get(), GGML_TYPE_F32, 4, branch.input_ne.data());
  ggml_set_name(input, "input");
  ggml_set_input(input);
  ggml_tensor* output = branch.build(ctx.get(), input);
  ggml_set_output(output);
  ggml_cgraph* gf = ggml_new_graph_custom(ctx.get(), static_cast<size_t>(model_->max_graph_nodes()), false);
  ggml_build_forward_expand(gf, output);
  kernels::check_packed_weights_unused_by_ggml(gf);
  for (const graph::StageNode& node : branch.nodes) {
    ggml_tensor* t = ggml_graph_get_tensor(gf, node.name);
    if (!t) throw Error("NATIVE", std::string("the branch graph has no node '") + node.name + "'");
    // Marked only when read back: an output keeps its memory to the end of the graph.
    if (params.collect_stages && node.rank > 0) ggml_set_output(t);
  }

  ggml_backend_sched_reset(sched_.get());
  if (!ggml_backend_sched_alloc_graph(sched_.get(), gf)) throw Error("NATIVE", "could not allocate the compute buffers");
  ggml_backend_tensor_set(input, branch.input, 0, ggml_nbytes(input));
  ComputeWatch watch(gf, branch.nodes, params, /*watch_layers=*/!model_->cpu_only());
  ggml_backend_sched_set_eval_callback(sched_.get(), ComputeWatch::callback, &watch);
  set_backend_abort_callback(model_->cpu_backend(), params.abort ? poll_abort : nullptr,
                             const_cast<std::atomic<bool>*>(params.abort));
  const ggml_status status = ggml_backend_sched_graph_compute(sched_.get(), gf);
  set_backend_abort_callback(model_->cpu_backend(), nullptr, nullptr);
  ggml_backend_sched_set_eval_callback(sched_.get(), nullptr, nullptr);
  if (NodeProfiler::enabled()) std::fprintf(stderr, "[profile]   compute buffers: %.1f MiB\n", compute_bytes() / 1048576.0);
  if (status == GGML_STATUS_ABORTED || watch.aborted()) {
    throw Error("ABORTED", std::string("encoding was aborted in ") + watch.stage());
  }
  if (status != GGML_STATUS_SUCCESS) throw Error("NATIVE", std::string("the encode failed: ") + ggml_status_to_string(status));

  ggml_backend_tensor_get(output, branch.output, 0, ggml_nbytes(output));
  if (params.collect_stages) {
    for (const graph::StageNode& node : branch.nodes) {
      if (node.rank > 0) result.stages[node.name] = read_node(ggml_graph_get_tensor(gf, node.name), node.rank);
    }
  }
}

static std::string format_dims(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

// `shape` must be [count, rest...] with 1 <= count <= max_count and the rest exactly as given.
static void check_shape(const char* what, const std::vector<int64_t>& shape, int max_count,
                        const std::vector<int64_t>& rest) {
  bool ok = shape.size() == rest.size() + 1 && shape[0] >= 1 && shape[0] <= max_count;
  for (size_t i = 0; ok && i < rest.size(); ++i) ok = shape[i + 1] == rest[i];
  if (!ok) {
    std::vector<int64_t> expected = {max_count};
    expected.insert(expected.end(), rest.begin(), rest.end());
    throw Error("INVALID_ARGUMENT", std::string("Expected a ") + what + " of shape " + format_dims(expected) +
                                        " (first dimension 1.." + std::to_string(max_count) + ") but received " +
                                        format_dims(shape));
  }
}

size_t ProjectorState::compute_bytes() const {
  size_t total = 0;
  for (ggml_backend_t backend : model_->backends()) total += ggml_backend_sched_get_buffer_size(sched_.get(), backend);
  return total;
}

size_t ProjectorState::video_output_size() const {
  const ProjectorInfo& info = model_->info();
  return static_cast<size_t>(info.video_queries) * info.llm_width;
}

size_t ProjectorState::audio_output_size() const {
  const ProjectorInfo& info = model_->info();
  return static_cast<size_t>(info.audio_queries) * info.llm_width;
}

EncodeResult ProjectorState::encode_video(const float* frames, const std::vector<int64_t>& shape, float* out,
                                          const EncodeParams& params) {
  if (!model_->vision()) throw Error("INVALID_ARGUMENT", "this projector has no vision branch (vl.has_vision is false)");
  const graph::VisionBranch& vb = *model_->vision();
  const int64_t s = vb.vit.image_size;
  check_shape("frames tensor", shape, vb.max_frames, {3, s, s});
  const int64_t t = shape[0];
  std::lock_guard<std::mutex> lock(busy_);

  EncodeResult result;
  run_branch({{s, s, 3, t}, frames,
              [&vb](ggml_context* ctx, ggml_tensor* in) { return graph::build_vision_graph(ctx, vb, in); },
              {std::begin(graph::kVisionNodes), std::end(graph::kVisionNodes)}, out},
             params, result);
  result.tokens = vb.video_qformer.queries;
  result.dim = model_->info().llm_width;
  return result;
}

EncodeResult ProjectorState::encode_audio(const float* fbank, const std::vector<int64_t>& shape, float* out,
                                          const EncodeParams& params) {
  if (!model_->audio()) throw Error("INVALID_ARGUMENT", "this projector has no audio branch (vl.has_audio is false)");
  const graph::AudioBranch& ab = *model_->audio();
  const int64_t mel = ab.imagebind.mel_bins, frames = ab.imagebind.target_frames;
  check_shape("fbank tensor", shape, ab.max_clips, {1, mel, frames});
  const int64_t m = shape[0];
  std::lock_guard<std::mutex> lock(busy_);

  EncodeResult result;
  run_branch({{frames, mel, 1, m}, fbank,
              [&ab](ggml_context* ctx, ggml_tensor* in) { return graph::build_audio_graph(ctx, ab, in); },
              {std::begin(graph::kAudioNodes), std::end(graph::kAudioNodes)}, out},
             params, result);
  result.tokens = ab.audio_qformer.queries;
  result.dim = model_->info().llm_width;
  return result;
}

}  // namespace vl
