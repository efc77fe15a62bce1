#pragma once
// Sampling a reply: the sampler chain (HuggingFace generate()'s order), why a reply stopped, and
// stop-string matching.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llama.h"

namespace vl::llm {

// Every field is set by the caller (the TypeScript chat holds the defaults).
struct SamplingParams {
  float temperature;  // <= 0: greedy
  int top_k;          // <= 0: off
  float top_p;        // >= 1: off
  float min_p;        // <= 0: off
  float repeat_penalty;     // 1: off
  float frequency_penalty;  // 0: off
  float presence_penalty;   // 0: off
  uint32_t seed;      // LLAMA_DEFAULT_SEED: random
  std::string grammar;  // GBNF with a rule `root`; empty: none
};

enum class StopReason { Eos, StopString, MaxTokens, ContextFull, Aborted };
const char* stop_reason_name(StopReason reason);

struct SamplerDeleter {
  void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerDeleter>;

// The order of HuggingFace's generate() that the original uses: the grammar (which only removes
// tokens, so it is first), repetition/frequency/presence penalties, then temperature, top-k,
// top-p, min-p, then a draw; the penalties look back `penalty_window` tokens. Throws Error
// INVALID_ARGUMENT when libllama cannot parse the grammar.
SamplerPtr make_sampler(const SamplingParams& params, const llama_model* model, int penalty_window);

// Whether one of `stops` ends inside text[appended_at - len + 1..]: only the tail can hold a new match.
bool contains_stop(const std::string& text, size_t appended_at, const std::vector<std::string>& stops);

}  // namespace vl::llm
