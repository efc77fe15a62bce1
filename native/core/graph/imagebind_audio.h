#pragma once
// ImageBind's audio encoder: stem, trunk, head and postprocessor.
// Reference: video_llama/models/ImageBind/models/imagebind_model.py (_create_modality_* for audio),
// multimodal_preprocessors.py:PatchEmbedGeneric, transformer.py:BlockWithMasking (nn.MultiheadAttention
// with add_bias_kv), helpers.py:SelectElement, Normalize, LearnableLogitScaling.
#include <vector>

#include "core/graph/common.h"

namespace vl::graph {

struct ImageBindBlock {
  LayerNorm ln1, ln2;                      // norm_1, norm_2 (pre-LN)
  Linear in_proj;                          // attn.in_proj_{weight,bias}: [Da, 3Da], q, k, v rows
  ggml_tensor* bias_k = nullptr;           // attn.bias_k [Da]: one extra key position
  ggml_tensor* bias_v = nullptr;           // attn.bias_v [Da]: one extra value position
  Linear attn_out;                         // attn.out_proj
  Linear ffn_up, ffn_down;                 // mlp.fc1, mlp.fc2
};

struct ImageBindAudio {
  int mel_bins = 0, target_frames = 0, patch_size = 0, patch_stride = 0;
  int width = 0, heads = 0, mlp_width = 0, out_width = 0;
  float stem_eps = 0, eps = 0, logit_scale = 0;
  ggml_tensor* patch_kernel = nullptr;  // [K, K, 1, Da] (no bias)
  LayerNorm patch_ln;                   // rgbt_stem.norm_layer
  ggml_tensor* cls_token = nullptr;     // [Da]
  ggml_tensor* pos_embd = nullptr;      // [Da, 1 + patches]
  std::vector<ImageBindBlock> blocks;
  LayerNorm head_ln;                    // heads.audio.0
  Linear head_proj;                     // heads.audio.2 (no bias): [Da, Do]

  int patches() const {
    return ((mel_bins - patch_size) / patch_stride + 1) * ((target_frames - patch_size) / patch_stride + 1);
  }
};

ImageBindAudio load_imagebind_audio(ProjectorLoader& file);

// Calls `visit` on every weight slot of `ib`: stem (conv kernel, LayerNorm), cls token, position
// embedding, every block's (bias_k / bias_v too), the head's LayerNorm and Linear.
void for_each_weight(ImageBindAudio& ib, const WeightVisitor& visit);

struct ImageBindAudioOutput {
  ggml_tensor* feature;    // [Da, M]: head LayerNorm, token 0 (get_audio_feature's audio_feature)
  ggml_tensor* embedding;  // [Do, M]: Linear, L2-normalised, × logit scale (modality_value)
};

// fbank [frames, mel, 1, M] (PyTorch [M, 1, mel, frames]) -> per-clip features and embeddings.
ImageBindAudioOutput build_imagebind_audio(ggml_context* ctx, const ImageBindAudio& ib, ggml_tensor* fbank);

}  // namespace vl::graph
