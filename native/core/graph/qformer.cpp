#include "core/graph/qformer.h"

#include "core/error.h"
#include "core/projector_loader.h"

namespace vl::graph {

static BertAttention load_bert_attention(ProjectorLoader& file, const std::string& blk, const std::string& kind,
                                         int64_t width, int64_t kv_width) {
  return {load_linear(file, blk + "." + kind + "_q", width, width),
          load_linear(file, blk + "." + kind + "_k", kv_width, width),
          load_linear(file, blk + "." + kind + "_v", kv_width, width),
          load_linear(file, blk + "." + kind + "_out", width, width),
          load_layer_norm(file, blk + "." + kind + "_ln", width)};
}

QFormer load_qformer(ProjectorLoader& file, const std::string& key, const std::string& prefix) {
  const std::string k = "vl." + key + ".";
  QFormer qf;
  qf.prefix = prefix;
  qf.width = file.size(k + "width");
  qf.heads = file.size(k + "heads");
  qf.queries = file.size(k + "queries");
  qf.encoder_width = file.size(k + "encoder_width");
  qf.eps = file.eps(k + "eps");
  // A Q-Former without layers has no graph to run (and ggml would abort on it).
  const int layers = file.count(k + "layers", 1);
  const int ffn_width = file.size(k + "ffn_width");
  const int cross_freq = file.size(k + "cross_attention_freq");
  if (qf.width % qf.heads != 0) {
    throw Error("INVALID_MODEL", key + " hyper-parameters are inconsistent: width " + std::to_string(qf.width) +
                                     ", heads " + std::to_string(qf.heads) + ", cross_attention_freq " +
                                     std::to_string(cross_freq));
  }
  const int64_t h = qf.width;
  qf.query_tokens = file.tensor(prefix + ".query_tokens", {h, qf.queries}, TensorKind::F32);
  qf.emb_ln = load_layer_norm(file, prefix + ".emb_ln", h);
  for (int i = 0; i < layers; ++i) {
    const std::string blk = prefix + ".blk." + std::to_string(i);
    QFormerLayer layer;
    layer.self_attn = load_bert_attention(file, blk, "self", h, h);
    layer.has_cross = i % cross_freq == 0;  // Qformer.py:BertLayer, layer_num % cross_attention_freq == 0
    if (layer.has_cross) layer.cross_attn = load_bert_attention(file, blk, "cross", h, qf.encoder_width);
    layer.ffn_up = load_linear(file, blk + ".ffn_up", h, ffn_width);
    layer.ffn_down = load_linear(file, blk + ".ffn_down", ffn_width, h);
    layer.ffn_ln = load_layer_norm(file, blk + ".ffn_ln", h);
    qf.layers.push_back(layer);
  }
  return qf;
}

// BertAttention + BertSelfOutput (post-LN): LN(dense(softmax(q kᵀ/√hd) v) + x).
static ggml_tensor* bert_attention(ggml_context* ctx, ggml_tensor* x, ggml_tensor* kv_source, const BertAttention& a,
                                   int heads, float eps) {
  ggml_tensor* context = attention(ctx, linear(ctx, x, a.q), linear(ctx, kv_source, a.k), linear(ctx, kv_source, a.v),
                                   heads, &a.q);
  return layer_norm(ctx, ggml_add(ctx, linear(ctx, context, a.out), x), a.ln, eps);
}

// Qformer.py:BertLayer.forward for query tokens only: self-attention, cross-attention (some
// layers), then the query FFN (feed_forward_chunk_query), each followed by Add & LayerNorm.
static ggml_tensor* bert_layer(ggml_context* ctx, ggml_tensor* x, ggml_tensor* encoder, const QFormer& qf, int il) {
  const QFormerLayer& layer = qf.layers[il];
  x = name(bert_attention(ctx, x, x, layer.self_attn, qf.heads, qf.eps), qf.prefix + ".blk", il, "self_out");
  if (layer.has_cross) {
    x = name(bert_attention(ctx, x, encoder, layer.cross_attn, qf.heads, qf.eps), qf.prefix + ".blk", il, "cross_out");
  }
  ggml_tensor* ffn = gelu_mlp(ctx, x, layer.ffn_up, layer.ffn_down);
  return name(layer_norm(ctx, ggml_add(ctx, ffn, x), layer.ffn_ln, qf.eps), qf.prefix + ".blk", il, "out");
}

ggml_tensor* build_qformer(ggml_context* ctx, const QFormer& qf, ggml_tensor* encoder) {
  // BertEmbeddings with query_embeds only: LayerNorm, no position or word embeddings.
  ggml_tensor* x = layer_norm(ctx, qf.query_tokens, qf.emb_ln, qf.eps);  // [H, Q]
  x = ggml_repeat_4d(ctx, x, qf.width, qf.queries, encoder->ne[2], 1);  // the same queries for every item
  for (int il = 0; il < static_cast<int>(qf.layers.size()); ++il) x = bert_layer(ctx, x, encoder, qf, il);
  return x;
}

}  // namespace vl::graph
