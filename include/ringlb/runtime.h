// Runtime: what ringlbd's workers share, built by the main thread from a Config.
//
// The main thread is the only writer: it validates a config, binds listening sockets
// (one SO_REUSEPORT socket per worker per VIP), builds pool snapshots and publishes
// them. Workers only read snapshots (SnapshotReader) and write their own counters, so
// the hot path takes no lock. A reload that fails (bad file, address in use) changes
// nothing.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringlb/config.h"
#include "ringlb/fd.h"
#include "ringlb/pool.h"
#include "ringlb/result.h"
#include "ringlb/snapshot.h"
#include "ringlb/stats.h"

namespace ringlb {

// One VIP's settings and pool at one moment: immutable once published.
struct VipState {
  VipSpec spec;  // spec.backends is the configured list; the pool is what policies use
  std::shared_ptr<const Pool> pool;
};

// A VIP for as long as it keeps its name and listen address (across reloads).
class VipRuntime {
 public:
  VipRuntime(std::string name, SocketAddress listen, std::vector<UniqueFd> listeners,
             std::shared_ptr<const VipState> state)
      : name_(std::move(name)),
        listen_(listen),
        listeners_(std::move(listeners)),
        state_(std::move(state)) {}

  const std::string& name() const { return name_; }
  const SocketAddress& listen() const { return listen_; }
  // The listening socket of worker `index`.
  int listener(size_t index) const { return listeners_.at(index).get(); }
  SnapshotCell<VipState>& state() { return state_; }
  // Stops accepting on every worker's listener: new connections are refused, and
  // pending multishot accepts complete.
  void shutdown_listeners() const;
  const SnapshotCell<VipState>& state() const { return state_; }

 private:
  std::string name_;
  SocketAddress listen_;
  std::vector<UniqueFd> listeners_;
  SnapshotCell<VipState> state_;
};

struct VipSet {
  std::vector<std::shared_ptr<VipRuntime>> vips;
};

class Runtime {
 public:
  // `workers` worker slots (counters, listeners per VIP).
  explicit Runtime(size_t workers);

  // Validates `config` against the running state and applies it: binds listeners for
  // new VIPs, rebuilds pools (keeping each backend's counters by name), publishes.
  // Proxy-mode VIPs only; forward-mode VIPs belong to the XDP plane. On error nothing
  // changes. Main thread only.
  Result<void> apply(const Config& config);

  size_t worker_count() const { return worker_stats_.size(); }
  WorkerStats& worker_stats(size_t index) { return *worker_stats_[index]; }
  const WorkerStats& worker_stats(size_t index) const { return *worker_stats_[index]; }
  const SnapshotCell<VipSet>& vips() const { return vips_; }
  const Config& config() const { return config_; }

  // Main thread: refuse new connections everywhere and let workers drain.
  void begin_drain();
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Every counter as "name value" lines: workers, then backends per VIP.
  std::string render_stats() const;

 private:
  std::vector<std::unique_ptr<WorkerStats>> worker_stats_;
  SnapshotCell<VipSet> vips_;
  Config config_;
  std::atomic<bool> draining_{false};
  // Backend counters by (vip, backend) name, kept across reloads.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<BackendStats>> backend_stats_;
};

// Binds a listening TCP socket with SO_REUSEPORT (non-blocking, close-on-exec).
Result<UniqueFd> bind_listener(const SocketAddress& address, int backlog);

}  // namespace ringlb
