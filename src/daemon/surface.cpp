#include "daemon/surface.h"

#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "daemon/log.h"
#include "ringlb/clock.h"

namespace ringlb::daemon {
namespace {

// The control filesystem, when asked for; nullptr when not (or when it cannot be
// mounted: traffic matters more than the control surface, so ringlbd serves without it,
// loudly).
std::unique_ptr<control::ControlFs> mount_control(control::ControlTree& tree,
                                                  const DaemonOptions& options,
                                                  const Config& config) {
  if (!options.control) {
    return nullptr;
  }
  const std::string dir = control_dir_of(options, config);
  std::optional<gid_t> readers;
  if (!config.daemon.control_group.empty()) {
    const group* found = ::getgrnam(config.daemon.control_group.c_str());
    if (found == nullptr) {
      log("control_group %s: no such group; the control tree stays root-only",
          config.daemon.control_group.c_str());
    } else {
      readers = found->gr_gid;
    }
  }
  auto mounted = control::ControlFs::mount(tree, dir, readers);
  if (!mounted) {
    log("control filesystem not mounted: %s", mounted.error().message.c_str());
    return nullptr;
  }
  log("control filesystem at %s", dir.c_str());
  return std::move(*mounted);
}

// [daemon] metrics_listen: GET /metrics over HTTP, the body the control tree's `metrics`
// file shows (one renderer). Started after the capabilities are dropped: a port below
// 1024 needs CAP_NET_BIND_SERVICE, which ringlbd keeps. False when it was asked for and
// cannot bind: a monitoring endpoint asked for and silently missing is worse than no start.
// It serves through the drain and stops when `http` goes (before the control tree).
bool serve_metrics(MetricsHttp& http, const control::ControlTree& tree, const Config& config) {
  if (!config.daemon.metrics_listen) {
    return true;
  }
  auto started = http.start(
      MetricsHttpOptions{.listen = *config.daemon.metrics_listen},
      [&tree] { return tree.read("/metrics"); },
      [](const std::string& trouble) { log("metrics_listen: %s", trouble.c_str()); });
  if (!started) {
    log("[daemon] metrics_listen: %s", started.error().message.c_str());
    return false;
  }
  log("metrics at http://%s/metrics", http.address().to_string().c_str());
  return true;
}

}  // namespace

std::string control_dir_of(const DaemonOptions& options, const Config& config) {
  return options.control_dir.empty() ? config.daemon.control_dir : options.control_dir;
}

// Mounts the control tree and serves metrics; false when metrics_listen cannot bind.
bool open_surface(Surface& surface, control::ControlTree& tree, const DaemonOptions& options,
                  const Config& config) {
  surface.control_fs = mount_control(tree, options, config);
  return serve_metrics(surface.metrics, tree, config);
}

// Serves hand-over requests for this daemon's control_dir (none without one). The
// successor's "taken" becomes a SIGTERM queued with kHandoverValue (serve_signals).
void serve_handovers(Surface& surface, const Runtime& runtime, const DaemonOptions& options,
                     const Config& config) {
  if (!options.control || !surface.lock) {
    return;
  }
  auto server = HandoverServer::start(control_dir_of(options, config), runtime, [](pid_t pid) {
    log("hand-over: pid %d accepts on our listeners; stepping down", static_cast<int>(pid));
    ::sigqueue(::getpid(), SIGTERM, sigval{.sival_int = kHandoverValue});
  });
  if (!server) {
    log("hand-over unavailable: %s", server.error().message.c_str());
    return;
  }
  surface.handover = std::move(*server);
}

// The old side, once the successor accepts: this daemon accepts nothing more (its
// workers cancel their accepts; the sockets stay open for the successor), then gives up
// the metrics port, the control mount and the lock, and the successor hears "released".
// Its connections then drain as after a SIGTERM.
void step_down(Surface& surface, Runtime& runtime) {
  runtime.release_listeners();
  const uint64_t deadline = monotonic_ms() + 2000;
  auto stopped = [&runtime] {
    for (size_t i = 0; i < runtime.worker_count(); ++i) {
      if (!runtime.worker_stats(i).accepts_stopped.load(std::memory_order_acquire)) {
        return false;
      }
    }
    return true;
  };
  while (!stopped() && monotonic_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  surface.metrics.stop();
  surface.control_fs.reset();  // unmounted (and its guardian gone) before the successor mounts
  surface.lock.reset();
  if (surface.handover) {
    surface.handover->released();
  }
}

// The new side, once its workers accept: the predecessor steps down, then this daemon
// takes the lock, the control mount and the metrics port. Whatever fails here is
// reported and the daemon goes on serving: its predecessor is draining already.
void take_over(Surface& surface, Handover& handover, control::ControlTree& tree,
               const DaemonOptions& options, const Config& config) {
  if (auto released = handover.taken(30000); !released) {
    log("%s; serving without the control filesystem", released.error().message.c_str());
    return;
  }
  auto lock = InstanceLock::take(control_dir_of(options, config));
  if (!lock) {
    log("after the hand-over: %s; serving without the control filesystem",
        lock.error().message.c_str());
    return;
  }
  surface.lock = std::move(*lock);
  log("took over from ringlbd pid %d", static_cast<int>(handover.predecessor()));
  open_surface(surface, tree, options, config);
}

// --handover: the listeners of the ringlbd serving this control_dir.
Result<std::optional<Handover>> request_handover(const DaemonOptions& options,
                                                 const Config& config) {
  if (!options.handover) {
    return std::optional<Handover>();
  }
  if (!options.control) {
    return Error{
        "--handover needs the control filesystem (it finds the running ringlbd by "
        "its control_dir): drop --no-control"};
  }
  auto handover = Handover::request(control_dir_of(options, config));
  if (!handover) {
    return handover.error();
  }
  log("hand-over: pid %d gave %zu listening addresses", static_cast<int>(handover->predecessor()),
      handover->listener_addresses());
  return std::optional<Handover>(std::move(*handover));
}

}  // namespace ringlb::daemon
