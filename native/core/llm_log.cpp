#include "core/llm_log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>

#include "llama.h"

namespace vl::llm {

namespace {

constexpr size_t kKeptLogLines = 8;

struct LogState {
  std::mutex mutex;
  std::deque<std::pair<uint64_t, std::string>> errors;  // (sequence number, line)
  uint64_t lines = 0;
  std::string partial;  // libllama may log a line in several calls
  bool echo = false;
};

LogState& log_state() {
  static LogState state;
  return state;
}

void on_log(ggml_log_level level, const char* text, void*) {
  LogState& state = log_state();
  if (state.echo) std::fputs(text, stderr);
  // GGML_LOG_LEVEL_CONT continues the previous line at the previous line's level.
  static thread_local bool keeping = false;
  if (level != GGML_LOG_LEVEL_CONT) keeping = level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN;
  if (!keeping) return;
  std::lock_guard<std::mutex> lock(state.mutex);
  state.partial += text;
  size_t newline;
  while ((newline = state.partial.find('\n')) != std::string::npos) {
    std::string line = state.partial.substr(0, newline);
    state.partial.erase(0, newline + 1);
    if (line.empty()) continue;
    state.errors.emplace_back(++state.lines, std::move(line));
    if (state.errors.size() > kKeptLogLines) state.errors.pop_front();
  }
}

}  // namespace

void capture_logs() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("VIDEO_LLAMA_LOG");
    log_state().echo = env && std::strcmp(env, "") != 0 && std::strcmp(env, "0") != 0;
    llama_log_set(on_log, nullptr);
  });
}

uint64_t log_mark() {
  LogState& state = log_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  return state.lines;
}

std::string log_errors_since(uint64_t mark) {
  LogState& state = log_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  std::string out;
  for (const auto& [seq, line] : state.errors) {
    if (seq <= mark) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

std::string with_log(const std::string& message, uint64_t mark) {
  const std::string log = log_errors_since(mark);
  return log.empty() ? message : message + " (libllama: " + log + ")";
}

}  // namespace vl::llm
