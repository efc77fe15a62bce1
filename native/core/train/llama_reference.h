#pragma once
// The logits libllama computes for a prompt at every position, in the numerics our training graph
// uses (f32 KV cache, no flash attention: libllama's defaults round K and V to f16), so that
// test/model/train-llama.test.ts can hold llama_graph.h to 1e-4 of libllama.
#include <cstdint>
#include <string>
#include <vector>

namespace vl::train {

// [n_tokens][n_vocab]. Throws vl::Error INVALID_MODEL when libllama cannot load `path`.
std::vector<float> libllama_f32_logits(const std::string& path, const std::vector<int32_t>& tokens, int threads);

}  // namespace vl::train
