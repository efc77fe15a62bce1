#pragma once
// LayerNorm and GELU from ops whose backward this ggml release implements: it has none for
// GGML_OP_NORM (ggml_norm), GELU (ggml_gelu / ggml_gelu_erf) nor GGML_OP_L2_NORM, which the encoder graphs
// (native/core/graph) use for inference. gradient_check.h proves both the values and gradients.
#include "ggml.h"

namespace vl::train {

// nn.LayerNorm over ne[0]: rms_norm(x - mean(x)) = (x - mean) / sqrt(var + eps), times weight plus
// bias (either may be null). The mean is repeated explicitly: SUB's backward does not reduce a
// broadcast operand.
ggml_tensor* layer_norm(ggml_context* ctx, ggml_tensor* x, ggml_tensor* weight, ggml_tensor* bias, float eps);

// PyTorch's exact GELU, x·Φ(x), with erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7).
ggml_tensor* gelu_erf(ggml_context* ctx, ggml_tensor* x);

// F.normalize(x, p=2) over ne[0] (GGML_OP_L2_NORM has no backward): x / sqrt(Σx² + eps²), which
// differs from x / max(‖x‖, eps) only for ‖x‖ near eps.
ggml_tensor* l2_norm(ggml_context* ctx, ggml_tensor* x, float eps);

}  // namespace vl::train
