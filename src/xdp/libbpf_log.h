// libbpf's messages: kept while a load or a tc change runs, so that a rejected program's
// error carries the verifier log, and dropped otherwise.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "ringlb/result.h"

namespace ringlb::xdp {

// While it lives, libbpf's warnings are kept in it (its debug messages never are). One
// capture at a time: a second waits for the first to end.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  // The end of the log (the verifier's verdict is at the end).
  std::string tail(size_t max = 8192) const;

 private:
  std::lock_guard<std::mutex> lock_;
  std::string text_;
};

// An Error for a failed libbpf call: "`what`: strerror(err)" (err may be negative), with
// the end of `log` when there is one.
Error libbpf_error(std::string_view what, int err, const LogCapture* log = nullptr);

}  // namespace ringlb::xdp
