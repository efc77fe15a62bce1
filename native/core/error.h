#pragma once
// The one exception type of native/core and its one cancellation flag.
//
// vl::Error carries a stable code (the same strings as the TypeScript VideoLlamaErrorCode, listed
// once in src/bindings/errors.ts) and a message naming what was wrong, what was expected and what
// was found. vl::AbortFlag is what every slow job polls: an AbortSignal on the JavaScript side sets
// it (native/addon/abort_flag.h), LLM loading reads it from libllama's progress callback, decoding
// from llama_context's abort callback, encodes from ggml's backend abort callback.
#include <atomic>
#include <stdexcept>
#include <string>

namespace vl {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}

  // e.g. "INVALID_MODEL", "MISSING_TENSOR", "TENSOR_SHAPE", "INVALID_ARGUMENT", "ABORTED", "NATIVE".
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Set once to cancel; never cleared (a new job gets a new flag).
using AbortFlag = std::atomic<bool>;

// Whether `flag` (which may be null: no cancellation) has been set.
inline bool is_aborted(const AbortFlag* flag) { return flag && flag->load(std::memory_order_relaxed); }

// The shape of ggml's and libllama's abort callbacks, with an AbortFlag* as the data.
inline bool abort_callback(void* flag) { return is_aborted(static_cast<const AbortFlag*>(flag)); }

}  // namespace vl
