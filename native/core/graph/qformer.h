#pragma once
// The BLIP-2 Q-Former (a BERT whose learned query tokens attend to encoder states), on the
// query-only path Video-LLaMA uses; one definition for its three Q-Formers (BLIP-2's, the video
// and the audio Q-Former). Reference: video_llama/models/Qformer.py (BertEmbeddings, BertLayer,
// BertSelfAttention, BertSelfOutput, BertIntermediate, BertOutput), blip2.py:init_Qformer,
// video_llama.py:init_video_Qformer.
#include <string>
#include <vector>

#include "core/graph/common.h"

namespace vl::graph {

// attention.self.{query,key,value} + attention.output.{dense,LayerNorm}, or the same under crossattention.
struct BertAttention {
  Linear q, k, v, out;
  LayerNorm ln;
};

struct QFormerLayer {
  BertAttention self_attn;
  bool has_cross = false;
  BertAttention cross_attn;  // key/value read the encoder states: [Enc, H]
  Linear ffn_up, ffn_down;   // intermediate_query.dense, output_query.dense
  LayerNorm ffn_ln;          // output_query.LayerNorm
};

struct QFormer {
  std::string prefix;  // tensor-name prefix: "qf", "vqf", "aqf"
  int width = 0, heads = 0, queries = 0, encoder_width = 0;
  float eps = 0;
  ggml_tensor* query_tokens = nullptr;  // [H, Q]
  LayerNorm emb_ln;                     // embeddings.LayerNorm
  std::vector<QFormerLayer> layers;
};

// Reads `vl.<key>.*` and the `<prefix>.*` tensors, e.g. load_qformer(file, "qformer", "qf").
QFormer load_qformer(ProjectorLoader& file, const std::string& key, const std::string& prefix);

// Calls `visit` on every weight slot of `qf` (query tokens, LayerNorms, linear weights and biases),
// e.g. to replace them by trainable copies.
void for_each_weight(QFormer& qf, const WeightVisitor& visit);

// encoder [Enc, N, B] -> last_hidden_state [H, Q, B]; each batch item's queries attend to its own
// encoder states (no mask: Video-LLaMA's masks are all ones).
ggml_tensor* build_qformer(ggml_context* ctx, const QFormer& qf, ggml_tensor* encoder);

}  // namespace vl::graph
