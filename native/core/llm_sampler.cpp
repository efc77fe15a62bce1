#include "core/llm_sampler.h"

#include "core/error.h"

namespace vl::llm {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Eos: return "eos";
    case StopReason::StopString: return "stopString";
    case StopReason::MaxTokens: return "maxTokens";
    case StopReason::ContextFull: return "contextFull";
    case StopReason::Aborted: return "aborted";
  }
  return "unknown";
}

SamplerPtr make_sampler(const SamplingParams& p, const llama_model* model, int penalty_window) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  SamplerPtr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
  if (!p.grammar.empty()) {
    // libllama logs the parse error and returns null for a grammar it cannot read.
    llama_sampler* grammar = llama_sampler_init_grammar(vocab, p.grammar.c_str(), "root");
    if (!grammar) throw Error("INVALID_ARGUMENT", "options.grammar is not a GBNF grammar with a rule 'root' that libllama can parse");
    llama_sampler_chain_add(chain.get(), grammar);
  }
  if (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_penalties(llama_vocab_n_tokens(vocab), penalty_window, p.repeat_penalty,
                                                                      p.frequency_penalty, p.presence_penalty));
  }
  if (p.temperature <= 0.0f) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    return chain;
  }
  llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
  if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
  if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
  if (p.min_p > 0.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(p.min_p, 1));
  llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(p.seed));
  return chain;
}

bool contains_stop(const std::string& text, size_t appended_at, const std::vector<std::string>& stops) {
  for (const auto& stop : stops) {
    if (stop.empty()) continue;
    const size_t from = appended_at >= stop.size() ? appended_at - stop.size() + 1 : 0;
    if (text.find(stop, from) != std::string::npos) return true;
  }
  return false;
}

}  // namespace vl::llm
