#include "daemon/daemon.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

#include "daemon/caps.h"
#include "daemon/steering.h"
#include "daemon/xdp_sync.h"
#include "ringlb/config/config.h"
#include "ringlb/control/fuse_fs.h"
#include "ringlb/control/tree.h"
#include "ringlb/proxy/health_monitor.h"
#include "ringlb/proxy/ring.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/proxy/worker.h"

namespace ringlb::daemon {

using proxy::probe_io_uring;
using proxy::PumpMode;
using proxy::Worker;
using proxy::WorkerOptions;

namespace {

void log(const char* format, auto... args) {
  std::fprintf(stderr, "ringlbd: ");
  std::fprintf(stderr, format, args...);
  std::fprintf(stderr, "\n");
}

void write_stats(const Runtime& runtime, const std::string& path) {
  if (path.empty()) {
    return;
  }
  // Written whole, then renamed: a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << runtime.render_stats();
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

}  // namespace

int run_daemon(const DaemonOptions& options) {
  if (auto probe = probe_io_uring(); !probe) {
    log("%s", probe.error().message.c_str());
    return 1;
  }
  auto config = load_config(options.config_path);
  if (!config) {
    log("%s", config.error().message.c_str());
    return 1;
  }
  uint32_t workers = options.workers != 0 ? options.workers : config->daemon.workers;
  const auto cpus = static_cast<uint32_t>(std::thread::hardware_concurrency());
  if (workers == 0) {
    workers = cpus != 0 ? cpus : 1;
  }

  // Signals are taken synchronously by this thread; workers never see them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    sigaddset(&signals, sig);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  Runtime runtime(workers);
  // Every applied change of a forward-mode VIP also goes to the pinned XDP maps.
  XdpSync xdp_sync(options.pin_path);
  runtime.set_publish_hook([&xdp_sync](const Config& c, const Runtime::BackendHealth& healthy) {
    return xdp_sync.publish(c, healthy);
  });
  if (auto applied = runtime.apply(*config); !applied) {
    log("%s", applied.error().message.c_str());
    return 1;
  }
  // Steer mode ([xdp] with steer on): each VIP's listeners get the reuseport program.
  Steering steering;
  auto steer = [&](const Config& c) {
    if (!c.xdp.enabled || !c.xdp.steer) {
      return;
    }
    if (auto steered = steering.update(runtime, c, workers); !steered) {
      log("%s (connections are spread by the kernel instead)", steered.error().message.c_str());
    }
  };
  steer(*config);
  // Set-up that needs more privilege is done (listeners bound, programs loaded). Drop
  // every capability running and reloading do not need, before any thread starts:
  // threads inherit the reduced set (caps.h says what stays and why).
  if (auto kept = drop_capabilities(capabilities_to_keep(options.control)); kept) {
    log("capabilities kept: %s", capability_names(*kept).c_str());
  } else {
    log("cannot drop capabilities: %s", kept.error().message.c_str());
    return 1;
  }
  // SIGHUP and the control filesystem's `reload` file take the same path.
  auto reload = [&]() -> Result<void> {
    auto next = load_config(options.config_path);
    if (!next) {
      return Error{next.error().message, EINVAL};
    }
    if (auto applied = runtime.apply(*next); !applied) {
      return Error{applied.error().message, EINVAL};
    }
    steer(*next);
    return {};
  };
  control::ControlTree tree(runtime, reload, options.pin_path);
  std::unique_ptr<control::ControlFs> control_fs;
  if (options.control) {
    const std::string dir =
        options.control_dir.empty() ? config->daemon.control_dir : options.control_dir;
    auto mounted = control::ControlFs::mount(tree, dir);
    if (mounted) {
      control_fs = std::move(*mounted);
      log("control filesystem at %s", dir.c_str());
    } else {
      // Traffic matters more than the control surface: serve without it, loudly.
      log("control filesystem not mounted: %s", mounted.error().message.c_str());
    }
  }

  // Health checks, passive ejection, panic threshold, slow start: a thread of their own
  // (started after the capabilities are dropped, like the workers).
  proxy::HealthMonitor health(runtime);
  if (auto begun = health.start(); !begun) {
    log("%s", begun.error().message.c_str());
    return 1;
  }
  std::vector<std::thread> threads;
  std::vector<std::future<Result<void>>> started;
  for (uint32_t i = 0; i < workers; ++i) {
    std::promise<Result<void>> ready;
    started.push_back(ready.get_future());
    WorkerOptions worker_options{
        .index = i,
        .cpu = options.pin && cpus != 0 ? static_cast<int>(i % cpus) : -1,
        .max_connections = config->daemon.max_connections,
        .pipe_size = options.pipe_size,
        .drain_timeout_ms = config->daemon.drain_timeout_ms,
        .pump = options.splice_only ? PumpMode::splice : PumpMode::auto_,
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
    return 1;
  }
  size_t proxy_vips = runtime.vips().load()->vips.size();
  log("io_uring setup flags: %s", runtime.worker_info(0).ring_flags.c_str());
  log("serving %zu proxy VIPs with %u workers (config %s)%s", proxy_vips, workers,
      options.config_path.c_str(), steering.steered() != 0 ? ", steered by client hash" : "");

  // Forward-mode next hops: bpf_fib_lookup needs the kernel's neighbour entry for each
  // backend's next hop, and entries age out. Every 10 s the daemon asks the kernel to
  // keep them resolved (the XDP program drops, and counts, packets whose next hop has
  // no entry).
  const timespec kNextHopInterval{.tv_sec = 10, .tv_nsec = 0};
  while (true) {
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &kNextHopInterval);
    if (sig < 0) {
      const auto current = runtime.config();
      if (current->xdp.enabled) {
        xdp::resolve_next_hops(*current);
      }
      continue;
    }
    if (sig == SIGHUP) {
      if (auto reloaded = reload(); !reloaded) {
        log("reload failed, keeping the running config: %s", reloaded.error().message.c_str());
        continue;
      }
      log("reloaded %s: %zu proxy VIPs", options.config_path.c_str(),
          runtime.vips().load()->vips.size());
    } else if (sig == SIGUSR1) {
      write_stats(runtime, options.stats_file);
    } else if (sig == SIGTERM || sig == SIGINT) {
      log("draining (up to %u ms)", runtime.config()->daemon.drain_timeout_ms);
      runtime.begin_drain();
      break;
    }
  }
  for (auto& t : threads) {
    t.join();
  }
  write_stats(runtime, options.stats_file);
  control_fs.reset();
  log("drained, exiting");
  return 0;
}

}  // namespace ringlb::daemon
