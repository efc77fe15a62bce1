#include "core/graph/qformer.h"

#include "core/error.h"
#include "core/gguf_names.h"
#include "core/projector_loader.h"

namespace vl::graph {

// The tensor names of one attention kind (self or cross) of a Q-Former layer.
struct AttentionNames {
  const char *q, *k, *v, *out, *ln;
};
static constexpr AttentionNames kSelfAttention{TN_QFORMER_SELF_Q, TN_QFORMER_SELF_K, TN_QFORMER_SELF_V, TN_QFORMER_SELF_OUT,
                                               TN_QFORMER_SELF_LN};
static constexpr AttentionNames kCrossAttention{TN_QFORMER_CROSS_Q, TN_QFORMER_CROSS_K, TN_QFORMER_CROSS_V,
                                                TN_QFORMER_CROSS_OUT, TN_QFORMER_CROSS_LN};

static BertAttention load_bert_attention(ProjectorLoader& file, const AttentionNames& names, const char* prefix, int il,
                                         int64_t width, int64_t kv_width) {
  return {load_linear(file, gguf_layer(names.q, prefix, il), width, width),
          load_linear(file, gguf_layer(names.k, prefix, il), kv_width, width),
          load_linear(file, gguf_layer(names.v, prefix, il), kv_width, width),
          load_linear(file, gguf_layer(names.out, prefix, il), width, width),
          load_layer_norm(file, gguf_layer(names.ln, prefix, il), width)};
}

QFormer load_qformer(ProjectorLoader& file, const std::string& key, const std::string& prefix) {
  const char* group = key.c_str();
  const char* tp = prefix.c_str();
  QFormer qf;
  qf.prefix = prefix;
  qf.width = file.size(gguf_name(KEY_QFORMER_WIDTH, group));
  qf.heads = file.size(gguf_name(KEY_QFORMER_HEADS, group));
  qf.queries = file.size(gguf_name(KEY_QFORMER_QUERIES, group));
  qf.encoder_width = file.size(gguf_name(KEY_QFORMER_ENCODER_WIDTH, group));
  qf.eps = file.eps(gguf_name(KEY_QFORMER_EPS, group));
  // A Q-Former without layers has no graph to run (and ggml would abort on it).
  const int layers = file.count(gguf_name(KEY_QFORMER_LAYERS, group), 1);
  const int ffn_width = file.size(gguf_name(KEY_QFORMER_FFN_WIDTH, group));
  const int cross_freq = file.size(gguf_name(KEY_QFORMER_CROSS_ATTENTION_FREQ, group));
  if (qf.width % qf.heads != 0) {
    throw Error("INVALID_MODEL", key + " hyper-parameters are inconsistent: width " + std::to_string(qf.width) +
                                     ", heads " + std::to_string(qf.heads) + ", cross_attention_freq " +
                                     std::to_string(cross_freq));
  }
  const int64_t h = qf.width;
  qf.query_tokens = file.tensor(gguf_name(TN_QFORMER_QUERY_TOKENS, tp), {h, qf.queries}, TensorKind::F32);
  qf.emb_ln = load_layer_norm(file, gguf_layer(TN_QFORMER_EMB_LN, tp), h);
  for (int i = 0; i < layers; ++i) {
    QFormerLayer layer;
    layer.self_attn = load_bert_attention(file, kSelfAttention, tp, i, h, h);
    layer.has_cross = i % cross_freq == 0;  // Qformer.py:BertLayer, layer_num % cross_attention_freq == 0
    if (layer.has_cross) layer.cross_attn = load_bert_attention(file, kCrossAttention, tp, i, h, qf.encoder_width);
    layer.ffn_up = load_linear(file, gguf_layer(TN_QFORMER_FFN_UP, tp, i), h, ffn_width);
    layer.ffn_down = load_linear(file, gguf_layer(TN_QFORMER_FFN_DOWN, tp, i), ffn_width, h);
    layer.ffn_ln = load_layer_norm(file, gguf_layer(TN_QFORMER_FFN_LN, tp, i), h);
    qf.layers.push_back(layer);
  }
  return qf;
}

void for_each_weight(QFormer& qf, const WeightVisitor& visit) {
  auto attention = [&](BertAttention& a) {
    for (Linear* l : {&a.q, &a.k, &a.v, &a.out}) for_each_weight(*l, visit);
    for_each_weight(a.ln, visit);
  };
  visit(qf.query_tokens);
  for_each_weight(qf.emb_ln, visit);
  for (QFormerLayer& layer : qf.layers) {
    attention(layer.self_attn);
    if (layer.has_cross) attention(layer.cross_attn);
    for_each_weight(layer.ffn_up, visit);
    for_each_weight(layer.ffn_down, visit);
    for_each_weight(layer.ffn_ln, visit);
  }
}

// BertAttention + BertSelfOutput (post-LN): LN(dense(softmax(q kᵀ/√hd) v) + x).
static ggml_tensor* bert_attention(ggml_context* ctx, ggml_tensor* x, ggml_tensor* kv_source, const BertAttention& a,
                                   int heads, float eps) {
  ggml_tensor* context = attention(ctx, linear(ctx, x, a.q), linear(ctx, kv_source, a.k), linear(ctx, kv_source, a.v),
                                   heads, &a.q);
  return layer_norm(ctx, ggml_add(ctx, dropout(ctx, linear(ctx, context, a.out)), x), a.ln, eps);
}

// Qformer.py:BertLayer.forward for query tokens only: self-attention, cross-attention (some
// layers), then the query FFN (feed_forward_chunk_query), each followed by Add & LayerNorm.
static ggml_tensor* bert_layer(ggml_context* ctx, ggml_tensor* x, ggml_tensor* encoder, const QFormer& qf, int il) {
  const QFormerLayer& layer = qf.layers[il];
  x = name(bert_attention(ctx, x, x, layer.self_attn, qf.heads, qf.eps), qf.prefix + ".blk", il, "self_out");
  if (layer.has_cross) {
    x = name(bert_attention(ctx, x, encoder, layer.cross_attn, qf.heads, qf.eps), qf.prefix + ".blk", il, "cross_out");
  }
  ggml_tensor* ffn = dropout(ctx, gelu_mlp(ctx, x, layer.ffn_up, layer.ffn_down));
  return name(layer_norm(ctx, ggml_add(ctx, ffn, x), layer.ffn_ln, qf.eps), qf.prefix + ".blk", il, "out");
}

ggml_tensor* build_qformer(ggml_context* ctx, const QFormer& qf, ggml_tensor* encoder) {
  // BertEmbeddings with query_embeds only: LayerNorm, no position or word embeddings.
  ggml_tensor* x = dropout(ctx, layer_norm(ctx, qf.query_tokens, qf.emb_ln, qf.eps));  // [H, Q]
  x = ggml_repeat_4d(ctx, x, qf.width, qf.queries, encoder->ne[2], 1);  // the same queries for every item
  for (int il = 0; il < static_cast<int>(qf.layers.size()); ++il) x = bert_layer(ctx, x, encoder, qf, il);
  return x;
}

}  // namespace vl::graph
