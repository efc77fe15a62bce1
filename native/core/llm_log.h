#pragma once
// libllama's and ggml's log, routed to a small ring of warning/error lines instead of stderr, so
// that an error message can say what libllama reported about the operation that failed.
#include <cstdint>
#include <string>

namespace vl::llm {

// Installs the log callback (all lines go to stderr too when VIDEO_LLAMA_LOG=1). Idempotent.
void capture_logs();

// A point in the log; the warning/error lines logged after it (the last few) are kept.
uint64_t log_mark();
std::string log_errors_since(uint64_t mark);

// `message`, followed by what libllama logged since `mark` when it logged anything.
std::string with_log(const std::string& message, uint64_t mark);

}  // namespace vl::llm
