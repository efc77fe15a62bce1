#pragma once
// EVA ViT-g as BLIP-2 uses it, followed by BLIP-2's ln_vision.
// Reference: video_llama/models/eva_vit.py (VisionTransformer, Block, Attention), blip2.py:init_vision_encoder.
#include <vector>

#include "core/graph/common.h"

namespace vl::graph {

struct EvaVitBlock {
  LayerNorm ln1, ln2;       // norm1, norm2 (pre-LN)
  Linear qkv;                         // attn.qkv.weight [D, 3D] (q, k, v output rows), no bias
  ggml_tensor* q_bias = nullptr;      // attn.q_bias [D] (k has no bias)
  ggml_tensor* v_bias = nullptr;      // attn.v_bias [D]
  Linear attn_out;          // attn.proj
  Linear ffn_up, ffn_down;  // mlp.fc1, mlp.fc2
};

struct EvaVit {
  int image_size = 0, patch_size = 0, width = 0, heads = 0, mlp_width = 0;
  float eps = 0, ln_vision_eps = 0;
  ggml_tensor* patch_kernel = nullptr;  // [P, P, 3, D]
  ggml_tensor* patch_bias = nullptr;    // [D]
  ggml_tensor* cls_token = nullptr;     // [D]
  ggml_tensor* pos_embd = nullptr;      // [D, N + 1]
  std::vector<EvaVitBlock> blocks;
  LayerNorm ln_vision;

  int patches_per_side() const { return image_size / patch_size; }
  int tokens() const { return patches_per_side() * patches_per_side() + 1; }  // N + 1 (cls)
};

EvaVit load_eva_vit(ProjectorLoader& file);

// Calls `visit` on every weight slot of `vit`: patch embedding, cls token, position embedding,
// every block's, ln_vision.
void for_each_weight(EvaVit& vit, const WeightVisitor& visit);

// frames [S, S, 3, T] (PyTorch [T, 3, S, S]) -> ln_vision(ViT(frames)) [D, N + 1, T], all frames as one batch.
ggml_tensor* build_eva_vit(ggml_context* ctx, const EvaVit& vit, ggml_tensor* frames);

}  // namespace vl::graph
