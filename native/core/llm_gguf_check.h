#pragma once
// What we read from a language model's GGUF before libllama does: whether it is an LLM at all,
// hyper-parameters libllama would assert on (aborting the process) rather than report, and where
// token_embd.weight lies, for reading embedding rows without libllama internals.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ggml.h"

namespace vl::llm {

struct TensorLocation {
  size_t offset = 0;  // from the start of the file
  ggml_type type = GGML_TYPE_COUNT;
  int64_t row_length = 0;
  int64_t rows = 0;
};

struct LlmFileFacts {
  std::string architecture;  // general.architecture
  TensorLocation token_embd;
};

// Throws vl::Error INVALID_MODEL naming the fault (unreadable, a projector, no token embeddings,
// a block count or norm epsilon libllama cannot take).
LlmFileFacts check_llm_file(const std::string& path);

}  // namespace vl::llm
