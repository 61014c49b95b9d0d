// The ringlbd process: config, runtime, worker threads and signals.
#pragma once

#include <string>

namespace ringlb::daemon {

struct DaemonOptions {
  std::string config_path;
  std::string stats_file;                       // written on SIGUSR1 and at exit; empty: none
  std::string control_dir;                      // overrides [daemon] control_dir when non-empty
  bool control = true;                          // mount the control filesystem
  std::string pin_path = "/sys/fs/bpf/ringlb";  // where `ringlb attach` pinned the XDP maps
  uint32_t workers = 0;                         // overrides [daemon] workers when non-zero
  uint32_t pipe_size = 65536;
  bool pin = true;           // pin worker n to CPU n (mod the CPUs available)
  bool splice_only = false;  // PumpMode::splice instead of auto
  // Take the listeners of the ringlbd serving this control_dir, then let it drain
  // (handover.h).
  bool handover = false;
};

// Runs ringlbd until SIGTERM/SIGINT has drained it. Returns the process exit code:
// 0 after a drain, 1 when start-up failed (the message is on stderr).
//   SIGHUP   reload the config: VIPs and backends added, removed or re-weighted without
//            breaking established connections; a bad config is reported and ignored.
//   SIGUSR1  write every counter to the stats file.
//   SIGTERM, SIGINT  stop accepting, let connections finish up to drain_timeout_ms.
//   SIGUSR2  reopen the connection log file.
// With --handover it starts on the listening sockets of the ringlbd serving its
// control_dir, which then stops accepting and drains (handover.h): nothing is refused.
int run_daemon(const DaemonOptions& options);

}  // namespace ringlb::daemon
