#include "daemon/daemon.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "daemon/access_log.h"
#include "daemon/caps.h"
#include "daemon/handover.h"
#include "daemon/instance_lock.h"
#include "daemon/log.h"
#include "daemon/metrics_http.h"
#include "daemon/notify.h"
#include "daemon/steering.h"
#include "daemon/surface.h"
#include "daemon/xdp_sync.h"
#include "ringlb/clock.h"
#include "ringlb/config/config.h"
#include "ringlb/control/fuse_fs.h"
#include "ringlb/control/tree.h"
#include "ringlb/proxy/health_monitor.h"
#include "ringlb/proxy/ring.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/proxy/worker.h"
#include "ringlb/telemetry/writers.h"
#include "ringlb/xdp/next_hops.h"

namespace ringlb::daemon {

using proxy::probe_io_uring;
using proxy::PumpMode;
using proxy::Worker;
using proxy::WorkerOptions;

namespace {

void write_stats(const Runtime& runtime, const std::string& path) {
  if (path.empty()) {
    return;
  }
  // Written whole, then renamed: a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  {
    telemetry::Snapshot snapshot;
    runtime.fill_snapshot(snapshot);
    std::ofstream out(tmp, std::ios::trunc);
    out << telemetry::stats_text(snapshot);
    if (!out) {
      log("cannot write stats file %s: %s", tmp.c_str(), std::strerror(errno));
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    log("cannot write stats file %s: %s", path.c_str(), std::strerror(errno));
  }
}

// Descriptors: a proxy needs about 4 per connection (2 sockets, 2 pipes = 4 pipe fds).
void raise_fd_limit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// Workers: --workers, else the config's, else one per CPU.
uint32_t worker_count(const DaemonOptions& options, const Config& config, uint32_t cpus) {
  const uint32_t workers = options.workers != 0 ? options.workers : config.daemon.workers;
  return workers != 0 ? workers : std::max<uint32_t>(cpus, 1);
}

// Drops every capability running and reloading do not need, before any thread starts:
// threads inherit the reduced set (caps.h says what stays and why).
bool drop_privileges(const DaemonOptions& options) {
  auto kept = drop_capabilities(capabilities_to_keep(options.control));
  if (!kept) {
    log("cannot drop capabilities: %s", kept.error().message.c_str());
    return false;
  }
  log("capabilities kept: %s", capability_names(*kept).c_str());
  return true;
}

// hash_seed is a secret: the file holding it must be private (config.h). A config
// without one is served, with a warning at every start and reload.
Result<void> check_seed(const std::string& path, const Config& config) {
  if (!config.daemon.hash_seed_set) {
    log("warning: %s", kNoHashSeedWarning);
    return {};
  }
  return check_secret_file(path, ::geteuid());
}

// Before anything is bound: the seed's file is private, and no other ringlbd serves this
// control_dir (the lock, held until exit; none without a control filesystem).
Result<std::optional<InstanceLock>> preflight(const DaemonOptions& options, const Config& config) {
  if (auto secret = check_seed(options.config_path, config); !secret) {
    return secret.error();
  }
  if (!options.control || options.handover) {
    return std::optional<InstanceLock>();  // a hand-over takes the lock once released
  }
  auto lock = InstanceLock::take(control_dir_of(options, config));
  if (!lock) {
    return lock.error();
  }
  return std::optional<InstanceLock>(std::move(*lock));
}

// Signals are taken synchronously by the main thread; workers never see them.
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&signals, sig);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

// Starts `workers` worker threads and waits until each has set up its ring. On a
// failed start-up the others are drained and joined, and the result is empty.
std::vector<std::thread> start_workers(Runtime& runtime, const DaemonOptions& options,
                                       const Config& config, uint32_t workers, uint32_t cpus,
                                       const AccessLog* access_log) {
  std::vector<std::thread> threads;
  std::vector<std::future<Result<void>>> started;
  for (uint32_t i = 0; i < workers; ++i) {
    std::promise<Result<void>> ready;
    started.push_back(ready.get_future());
    WorkerOptions worker_options{
        .index = i,
        .cpu = options.pin && cpus != 0 ? static_cast<int>(i % cpus) : -1,
        .max_connections = config.daemon.max_connections,
        .pipe_size = options.pipe_size,
        .drain_timeout_ms = config.daemon.drain_timeout_ms,
        .pump = options.splice_only ? PumpMode::splice : PumpMode::auto_,
        .log = access_log != nullptr ? access_log->sink(i) : proxy::AccessLogSink{},
    };
    threads.emplace_back([&runtime, worker_options, ready = std::move(ready)]() mutable {
      Worker worker(runtime, worker_options);
      auto init = worker.init();
      const bool ok = init.ok();
      ready.set_value(std::move(init));
      if (ok) {
        worker.run();
      }
    });
  }
  bool ok = true;
  for (auto& f : started) {
    if (auto r = f.get(); !r) {
      log("worker start-up failed: %s", r.error().message.c_str());
      ok = false;
    }
  }
  if (!ok) {
    runtime.begin_drain();
    for (auto& t : threads) {
      t.join();
    }
    threads.clear();
  }
  return threads;
}

// Whether every worker's loop ticked within `limit_ms` (the watchdog's test).
bool workers_alive(const Runtime& runtime, uint64_t limit_ms) {
  const uint64_t now_ms = coarse_monotonic_ms();  // the workers' clock
  for (size_t i = 0; i < runtime.worker_count(); ++i) {
    const uint64_t beat = runtime.worker_stats(i).heartbeat_ms.load(std::memory_order_relaxed);
    if (beat + limit_ms < now_ms) {
      return false;
    }
  }
  return true;
}

// Until SIGTERM or SIGINT (then the runtime drains): SIGHUP reloads, SIGUSR1 writes the
// stats file, SIGUSR2 reopens the connection log, every 10 s the forward-mode next hops are kept
// resolved (bpf_fib_lookup needs the kernel's neighbour entry for each backend's next hop, and
// entries age out; the XDP program drops, and counts, packets whose next hop has none), and under a
// systemd watchdog WATCHDOG=1 goes out every half interval while every worker ticks.
// Returns true for a hand-over (the successor's "taken" arrives as a SIGTERM this
// process queued to itself with kHandoverValue), false for a plain stop.
bool serve_signals(Runtime& runtime, const DaemonOptions& options, const sigset_t& signals,
                   AccessLog* access_log, const std::function<Result<void>()>& reload) {
  constexpr uint64_t kNextHopMs = 10000;
  const uint64_t watchdog_ms = watchdog_usec() / 1000;
  const uint64_t wake_ms = watchdog_ms != 0 ? std::min(kNextHopMs, watchdog_ms / 2) : kNextHopMs;
  const timespec wake{.tv_sec = static_cast<time_t>(wake_ms / 1000),
                      .tv_nsec = static_cast<long>(wake_ms % 1000) * 1000000};
  uint64_t since_next_hops_ms = 0;
  while (true) {
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &wake);
    if (watchdog_ms != 0 && workers_alive(runtime, std::max<uint64_t>(watchdog_ms / 2, 1000))) {
      notify("WATCHDOG=1");
    }
    if (sig < 0) {
      since_next_hops_ms += wake_ms;
      if (since_next_hops_ms >= kNextHopMs && runtime.config()->xdp.enabled) {
        since_next_hops_ms = 0;
        xdp::resolve_next_hops(*runtime.config());
      }
      continue;
    }
    if (sig == SIGHUP) {
      notify("RELOADING=1");
      (void)reload();  // it logs the outcome
      notify("READY=1");
    } else if (sig == SIGUSR2) {
      if (access_log != nullptr) {
        access_log->reopen();
      }
    } else if (sig == SIGUSR1) {
      write_stats(runtime, options.stats_file);
    } else if (sig == SIGTERM || sig == SIGINT) {
      notify("STOPPING=1");
      return sig == SIGTERM && info.si_code == SI_QUEUE && info.si_pid == ::getpid() &&
             info.si_value.sival_int == kHandoverValue;
    }
  }
}

// Steer mode ([xdp] with steer on): each VIP's listeners get the reuseport program.
void steer(Steering& steering, Runtime& runtime, const Config& config, uint32_t workers) {
  if (!config.xdp.enabled || !config.xdp.steer) {
    return;
  }
  if (auto steered = steering.update(runtime, config, workers); !steered) {
    log("%s (connections are spread by the kernel instead)", steered.error().message.c_str());
  }
}

// "serving ...": the tests and the operator wait for this line.
void log_serving(const Runtime& runtime, const DaemonOptions& options, uint32_t workers,
                 const Steering& steering) {
  const size_t proxy_vips = runtime.vips().load()->vips.size();
  log("io_uring setup flags: %s", runtime.worker_info(0).ring_flags.c_str());
  log("serving %zu proxy VIPs with %u workers (config %s)%s", proxy_vips, workers,
      options.config_path.c_str(), steering.steered() != 0 ? ", steered by client hash" : "");
  notify("READY=1\nSTATUS=serving " + std::to_string(proxy_vips) + " proxy VIPs");
}

// metrics_listen and the connection log are read at start only: a reload that asks for
// other settings is told so.
void check_start_only(const Config& started, const Config& next) {
  const auto& now = started.daemon.metrics_listen;
  const auto& asked = next.daemon.metrics_listen;
  if (now != asked) {
    log("reload: [daemon] metrics_listen changes to %s only at the next start; serving %s",
        asked ? asked->to_string().c_str() : "none", now ? now->to_string().c_str() : "none");
  }
  const auto& log_now = started.daemon.access_log;
  const auto& log_asked = next.daemon.access_log;
  if (log_now.target != log_asked.target || log_now.format != log_asked.format ||
      log_now.sample != log_asked.sample || log_now.rate_limit != log_asked.rate_limit ||
      log_now.buffer != log_asked.buffer) {
    log("reload: the connection log's settings (access_log, access_log_format, log_*) change "
        "only at the next start");
  }
}

// SIGHUP and the control filesystem's `reload` file take the same path: the file is
// read, its seed checked, the config applied and steered; `started` is the config ringlbd
// started with (for the settings read at start only)...
Result<void> apply_config_file(Runtime& runtime, Steering& steering, const DaemonOptions& options,
                               const Config& started, uint32_t workers) {
  auto next = load_config(options.config_path);
  if (!next) {
    return Error{next.error().message, EINVAL};
  }
  if (auto secret = check_seed(options.config_path, *next); !secret) {
    return Error{secret.error().message, EINVAL};
  }
  if (auto applied = runtime.apply(*next); !applied) {
    return Error{applied.error().message, EINVAL};
  }
  steer(steering, runtime, *next, workers);
  check_start_only(started, *next);
  return {};
}

// ... and says how it went, whichever way it was asked for (SIGHUP, the tree's `reload`
// file, which the unit's ExecReload= writes).
Result<void> reload_config(Runtime& runtime, Steering& steering, const DaemonOptions& options,
                           const Config& started, uint32_t workers) {
  auto reloaded = apply_config_file(runtime, steering, options, started, workers);
  if (!reloaded) {
    log("reload failed, keeping the running config: %s", reloaded.error().message.c_str());
  } else {
    log("reloaded %s: %zu proxy VIPs", options.config_path.c_str(),
        runtime.vips().load()->vips.size());
  }
  return reloaded;
}

// The io_uring probe, then the config.
Result<Config> start_config(const DaemonOptions& options) {
  if (auto probe = probe_io_uring(); !probe) {
    return probe.error();
  }
  return load_config(options.config_path);
}

// After the drain: the workers' last records logged, the final counters written.
void finish(std::vector<std::thread>& threads, AccessLog* access_log, const Runtime& runtime,
            const DaemonOptions& options) {
  for (auto& t : threads) {
    t.join();
  }
  if (access_log != nullptr) {
    access_log->stop();  // after the workers: their last records are written
  }
  write_stats(runtime, options.stats_file);
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
  auto config = start_config(options);
  auto instance =
      config ? preflight(options, *config) : Result<std::optional<InstanceLock>>(config.error());
  auto handover = instance ? request_handover(options, *config)
                           : Result<std::optional<Handover>>(instance.error());
  if (!handover) {
    log("%s", handover.error().message.c_str());
    return 1;
  }
  const auto cpus = static_cast<uint32_t>(std::thread::hardware_concurrency());
  const uint32_t workers = worker_count(options, *config, cpus);

  const sigset_t signals = block_signals();
  raise_fd_limit();

  Runtime runtime(workers);
  if (*handover) {
    runtime.adopt_listeners((*handover)->take_listeners());
  }
  // Every applied change of a forward-mode VIP also goes to the pinned XDP maps.
  XdpSync xdp_sync(options.pin_path);
  runtime.set_publish_hook([&xdp_sync](const Config& c, const Runtime::BackendHealth& healthy) {
    return xdp_sync.publish(c, healthy);
  });
  if (auto applied = runtime.apply(*config); !applied) {
    log("%s", applied.error().message.c_str());
    return 1;
  }
  Steering steering;
  steer(steering, runtime, *config, workers);
  // Set-up that needs more privilege is done (listeners bound, programs loaded).
  if (!drop_privileges(options)) {
    return 1;
  }
  auto reload = [&] { return reload_config(runtime, steering, options, *config, workers); };
  control::ControlTree tree(runtime, reload, options.pin_path);
  Surface surface;
  surface.lock = std::move(*instance);
  if (!*handover && !open_surface(surface, tree, options, *config)) {
    return 1;
  }

  // Health checks, passive ejection, panic threshold, slow start: a thread of their own
  // (started after the capabilities are dropped, like the workers).
  proxy::HealthMonitor health(runtime);
  if (auto begun = health.start(); !begun) {
    log("%s", begun.error().message.c_str());
    return 1;
  }
  auto access_log = AccessLog::start(config->daemon.access_log, workers, runtime);
  if (!access_log) {
    log("%s", access_log.error().message.c_str());
    return 1;
  }
  auto threads = start_workers(runtime, options, *config, workers, cpus, access_log->get());
  if (threads.empty()) {
    return 1;
  }
  if (*handover) {
    take_over(surface, **handover, tree, options, *config);
  }
  serve_handovers(surface, runtime, options, *config);
  log_serving(runtime, options, workers, steering);

  if (serve_signals(runtime, options, signals, access_log->get(), reload)) {
    step_down(surface, runtime);
  }
  log("draining (up to %u ms)", runtime.config()->daemon.drain_timeout_ms);
  runtime.begin_drain();
  finish(threads, access_log->get(), runtime, options);
  surface.control_fs.reset();
  log("drained, exiting");
  return 0;
}

}  // namespace ringlb::daemon
