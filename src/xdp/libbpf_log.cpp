// libbpf's print callback and the capture (libbpf_log.h).
#include "libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>

namespace ringlb::xdp {
namespace {

std::mutex log_mutex;
std::string* log_capture = nullptr;  // guarded by log_mutex

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) {
    return 0;
  }
  if (log_capture == nullptr) {
    return 0;
  }
  // One call can carry the whole verifier log (megabytes): size it first, since the
  // verdict is at its end.
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n > 0) {
    std::string line(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(line.data(), line.size(), format, args);
    line.pop_back();
    log_capture->append(line);
  }
  return 0;
}

}  // namespace

LogCapture::LogCapture() : lock_(log_mutex) {
  log_capture = &text_;
  libbpf_set_print(libbpf_print);
}

LogCapture::~LogCapture() {
  log_capture = nullptr;
}

std::string LogCapture::tail(size_t max) const {
  return text_.size() <= max ? text_ : "..." + text_.substr(text_.size() - max);
}

Error libbpf_error(std::string_view what, int err, const LogCapture* log) {
  Error error = system_error(what, err < 0 ? -err : err);
  if (log != nullptr) {
    const std::string text = log->tail();
    if (!text.empty()) {
      error.message += "\nlibbpf/verifier log:\n" + text;
    }
  }
  return error;
}

}  // namespace ringlb::xdp
