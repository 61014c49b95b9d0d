// ringlbd: the ringlb daemon. See src/daemon/daemon.h for signals and exit codes.
#include <CLI/CLI.hpp>

#include "daemon/daemon.h"

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer: libfuse's high-level API keeps state per open directory and per request
// in flight, and frees it only on the kernel's release or its reply. When ringlbd exits
// while a reader has a control directory open (or a request is being read), the aborted
// connection never sends those, and fuse_destroy does not free them: 120 or 128 bytes
// inside libfuse3, once, at exit. LeakSanitizer matches a pattern against every frame of
// an allocation's stack, so this also hides what ringlbd allocates in a FUSE callback:
// its per-file state is freed by ~ControlFs, checked with this line removed (a file and
// a directory held open across SIGTERM: no leak left but libfuse's directory state).
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libfuse3.so\n";
}
#endif

int main(int argc, char** argv) {
  ringlb::daemon::DaemonOptions options;
  CLI::App app{"ringlbd: per-core io_uring TCP load balancer"};
  app.add_option("-c,--config", options.config_path, "Config file (TOML)")->required();
  app.add_option("--stats-file", options.stats_file,
                 "Write every counter here on SIGUSR1 and at exit");
  app.add_option("--workers", options.workers, "Worker threads (overrides [daemon] workers)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--pipe-size", options.pipe_size, "Bytes per splice pipe (F_SETPIPE_SZ)")
      ->capture_default_str()
      ->check(CLI::Range(4096u, 1u << 20));
  app.add_flag("!--no-pin", options.pin, "Do not pin worker n to CPU n");
  app.add_option("--control-dir", options.control_dir,
                 "Mount the control filesystem here (overrides [daemon] control_dir)");
  app.add_flag("!--no-control", options.control, "Do not mount the control filesystem");
  app.add_option("--pin-path", options.pin_path,
                 "bpffs directory of the XDP program's pinned maps (its counters are shown)")
      ->capture_default_str();
  app.add_flag("--handover", options.handover,
               "Take the listening sockets of the ringlbd serving the same control_dir, "
               "then let it drain: a restart that refuses no client");
  std::string pump = "auto";
  app.add_option("--pump", pump,
                 "auto: copy small messages, splice bulk; splice: splice everything")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "splice"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  options.splice_only = pump == "splice";
  return ringlb::daemon::run_daemon(options);
}
