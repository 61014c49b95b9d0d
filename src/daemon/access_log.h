// The connection log's thread ([daemon] access_log): it empties the workers' rings
// (ringlb/proxy/access_log.h) every 20 ms, formats each record as a text (logfmt) or
// JSON line and writes them, in one write per round, to a file or, one datagram per
// line, to the systemd journal.
//
//   - The file is opened (append, created 0640) at start and again on SIGUSR2, for
//     logrotate: the old descriptor is closed once the new one is open; a failed reopen
//     keeps the old one and says why in ringlbd's own log.
//   - log_rate_limit caps the lines per second; what the cap or a full worker ring
//     (the worker counter log_dropped) dropped is said once a second in a line of the
//     log itself (`dropped=N reason=rate_limit|ring_full`).
//   - A writer that blocks (a pipe nobody reads, a slow disk) stalls only this thread:
//     the rings fill and the workers drop records, counted, and go on serving.
//   - The journal gets the line as MESSAGE plus RINGLB_* fields, through its native
//     socket (/run/systemd/journal/socket; RINGLB_JOURNAL_SOCKET names another, for
//     tests). A datagram the journal cannot take now is dropped and counted as well.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/fd.h"
#include "ringlb/proxy/access_log.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"

namespace ringlb::daemon {

// One record as a line, without the newline: key=value pairs (logfmt) or a JSON object.
std::string format_access_text(const proxy::AccessRecord& record);
std::string format_access_json(const proxy::AccessRecord& record);

class AccessLog {
 public:
  // Opens the log `config` names (an empty target: nullptr, no log) with one ring per
  // worker, and starts the thread. Fails, naming the file and errno, when it cannot
  // open it. `runtime` gives the workers' log_dropped counters.
  static Result<std::unique_ptr<AccessLog>> start(const AccessLogConfig& config, size_t workers,
                                                  const Runtime& runtime);
  ~AccessLog();  // stop()
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // What worker `index` hands its records to.
  proxy::AccessLogSink sink(size_t index) const;
  // SIGUSR2: reopen the file at the next round (any thread).
  void reopen() { reopen_.store(true, std::memory_order_relaxed); }
  // Writes what the rings still hold (the workers have stopped) and joins the thread.
  void stop();

 private:
  AccessLog(const AccessLogConfig& config, const Runtime& runtime)
      : config_(config), runtime_(runtime) {}
  Result<void> open_output();
  void run();
  void round(uint64_t now_ms);
  void add_line(std::string line, const proxy::AccessRecord* record);
  void add_notice(uint64_t count, const char* reason);
  void flush();
  void write_file(const std::string& text);
  void send_journal(const std::string& line, const proxy::AccessRecord* record);

  AccessLogConfig config_;
  const Runtime& runtime_;
  std::vector<std::unique_ptr<proxy::AccessRing>> rings_;
  UniqueFd fd_;  // the file, or the journal's datagram socket
  std::atomic<bool> reopen_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  // The log thread's own state.
  std::string pending_;         // lines of this round (file)
  uint64_t window_ms_ = 0;      // start of the current rate-limit second
  uint64_t window_lines_ = 0;   // lines written in it
  uint64_t rate_dropped_ = 0;   // dropped by the cap since the last notice
  uint64_t write_dropped_ = 0;  // lines the output refused (journal busy, stop timeout)
  uint64_t ring_dropped_ = 0;   // the workers' log_dropped total at the last notice
};

}  // namespace ringlb::daemon
