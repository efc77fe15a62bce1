#pragma once
// The one exception type of native/core: a stable code (the same strings as the TypeScript
// VideoLlamaErrorCode) and a message naming what was wrong, what was expected and what was found.
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

}  // namespace vl
