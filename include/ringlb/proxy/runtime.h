// Runtime: what ringlbd's workers share, built by the main thread from a Config.
//
// The main thread is the only writer: it validates a config, binds listening sockets
// (one SO_REUSEPORT socket per worker per VIP), builds pool snapshots and publishes
// them. Workers only read snapshots (SnapshotReader) and write their own counters, so
// the hot path takes no lock. A reload that fails (bad file, address in use) changes
// nothing.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/fd.h"
#include "ringlb/model/pool.h"
#include "ringlb/policy/policy.h"
#include "ringlb/proxy/stats.h"
#include "ringlb/result.h"
#include "ringlb/snapshot.h"
#include "ringlb/telemetry/snapshot.h"

namespace ringlb {

// One VIP's settings, pool and policy at one moment. A connection holds the snapshot it
// started with for its whole life, so its retries pick with the same pool and policy
// instance: the two are one value and cannot be mixed.
struct VipState {
  VipSpec spec;  // spec.backends is the configured list; the pool is what policies use
  std::shared_ptr<const Pool> pool;
  // The pool's policy, one instance per worker (index = worker): the only state in a
  // published snapshot that changes, and worker w alone touches policies[w].
  std::vector<std::unique_ptr<Policy>> policies;

  // A snapshot of `spec`: builds its pool from `backends` and one policy instance per
  // worker, each seeded by the pool's id and the worker's index.
  static std::shared_ptr<const VipState> make(VipSpec spec, std::vector<Backend> backends,
                                              const PoolOptions& options, size_t workers);
  Policy& policy(size_t worker) const { return *policies[worker]; }
};

// Pool-wide health of a VIP (health.h), written by the health monitor.
struct VipHealthStats {
  std::atomic<bool> panic{false};   // too few usable backends: every candidate is used
  std::atomic<uint64_t> panics{0};  // times the pool entered panic
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
  size_t listener_count() const { return listeners_.size(); }
  SnapshotCell<VipState>& state() { return state_; }
  // Stops accepting on every worker's listener: new connections are refused (the
  // kernel resets the SYN), connections still in the accept queue are reset, and
  // pending multishot accepts complete. The descriptors are closed with the VipRuntime,
  // once every worker has let go of it. Writers only (they hold the writer lock), or
  // the drain.
  void shutdown_listeners();
  // False once shutdown_listeners() or release() ran: workers arm no accept on it any
  // more.
  bool listening() const { return listening_.load(std::memory_order_acquire); }
  // Hand-over (daemon/handover.h): stops accepting but leaves the sockets as they are,
  // because another ringlbd holds them too and accepts from their queues now; a later
  // shutdown_listeners() then leaves them alone as well.
  void release();
  const SnapshotCell<VipState>& state() const { return state_; }
  VipHealthStats& health() { return health_; }
  const VipHealthStats& health() const { return health_; }

 private:
  std::string name_;
  SocketAddress listen_;
  std::vector<UniqueFd> listeners_;
  SnapshotCell<VipState> state_;
  VipHealthStats health_;
  std::atomic<bool> listening_{true};
  bool released_ = false;  // writers only
};

// The listening sockets of one VIP address that a running ringlbd handed over, in its
// worker order (daemon/handover.h).
struct InheritedListeners {
  SocketAddress address;
  std::vector<UniqueFd> fds;
};

struct VipSet {
  std::vector<std::shared_ptr<VipRuntime>> vips;
};

// Facts about one worker the control plane shows, set once at start.
struct WorkerInfo {
  int cpu = -1;  // pinned CPU, -1: not pinned
  // perf_event fds of the worker thread (cycles, instructions, task clock); -1 where the
  // machine has no such counter. Read with read(2) from any thread.
  int cycles_fd = -1;
  int instructions_fd = -1;
  int task_clock_fd = -1;
  std::string ring_flags;  // io_uring setup flags in use, e.g. "SINGLE_ISSUER|DEFER_TASKRUN"
};

class Runtime {
 public:
  // `workers` worker slots (counters, listeners per VIP).
  explicit Runtime(size_t workers);
  ~Runtime();

  // Validates `config` against the running state and applies it: binds listeners for
  // new VIPs, rebuilds pools (keeping each backend's counters by name), publishes.
  // Proxy-mode VIPs only; forward-mode VIPs belong to the XDP plane. On error nothing
  // changes. Writers (reloads, control writes) are serialized by a lock workers never
  // take.
  Result<void> apply(const Config& config);

  // Edits a copy of the running config with `change` and applies it, atomically with
  // respect to other writers: the control filesystem's writes.
  Result<void> edit(const std::function<Result<void>(Config&)>& change);

  // Rebuilds every pool from the running config and the backends' current health
  // (BackendStats::healthy, ramp_permille) and publishes them: the health monitor calls
  // it when a backend's health or slow-start weight changes.
  Result<void> republish();

  // The live counters of `backend` of `vip` (proxy or forward mode), or nullptr. They
  // are kept across reloads while the VIP keeps the backend.
  std::shared_ptr<BackendStats> backend_stats(std::string_view vip, std::string_view backend);

  // Health events: workers call notify_health() when a backend's consecutive connect
  // failures reach its VIP's eject_after_failures; the health monitor polls the
  // eventfd health_event_fd() and clears it. Safe from any thread.
  void notify_health() const;

  // Called under the writer lock by apply(), edit() and republish() with the config
  // about to be published and each backend's health, after the config is validated and
  // before anything is published: an error rejects the change and nothing changes.
  // ringlbd keeps the pinned XDP maps in step here (src/daemon/xdp_sync.h).
  using BackendHealth = std::function<bool(const std::string& vip, const std::string& backend)>;
  using PublishHook = std::function<Result<void>(const Config&, const BackendHealth&)>;
  void set_publish_hook(PublishHook hook);
  int health_event_fd() const { return health_events_.get(); }

  // Closes every established connection to `backend` of `vip`: each worker resets them
  // at its next tick.
  Result<void> shutdown_backend(std::string_view vip, std::string_view backend);

  size_t worker_count() const { return worker_stats_.size(); }
  WorkerStats& worker_stats(size_t index) { return *worker_stats_[index]; }
  const WorkerStats& worker_stats(size_t index) const { return *worker_stats_[index]; }
  // Set by each worker at start-up, before the control plane reads it.
  void set_worker_info(size_t index, WorkerInfo info);
  WorkerInfo worker_info(size_t index) const;

  const SnapshotCell<VipSet>& vips() const { return vips_; }
  std::shared_ptr<const Config> config() const { return config_.load(); }
  // The VIP named `name`, or nullptr.
  std::shared_ptr<VipRuntime> find_vip(std::string_view name) const;

  // Before the first apply(): listening sockets handed over by the ringlbd this one
  // replaces. apply() gives a new VIP on one of those addresses the inherited sockets
  // (worker w the w-th) instead of binding, and binds only what is missing; sockets of
  // an address no VIP takes are closed by the first apply().
  void adopt_listeners(std::vector<InheritedListeners> inherited);

  // Hand-over, the old side: every VIP stops accepting without touching its sockets
  // (release()). Each worker cancels its accepts at its next tick and then sets its
  // WorkerStats::accepts_stopped; from then on it accepts nothing more.
  void release_listeners();
  bool listeners_released() const { return released_.load(std::memory_order_acquire); }

  // Main thread: refuse new connections everywhere and let workers drain.
  void begin_drain();
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Fills `snapshot.proxy` with every counter: each worker's (with its CPU and perf
  // counters), the latency histograms summed over workers, the summed counters of
  // removed backends, and each VIP's health and backends. The writers of
  // telemetry/writers.h render it (`stats`, `metrics`, `stats.json`, --stats-file).
  void fill_snapshot(telemetry::Snapshot& snapshot) const;

 private:
  using BackendStatsMap =
      std::map<std::pair<std::string, std::string>, std::shared_ptr<BackendStats>>;
  Result<void> apply_locked(const Config& config);
  // The listeners of a VIP new to this runtime: inherited ones for its address, bound
  // ones for the rest (after checking that no other process listens there).
  Result<std::vector<UniqueFd>> listeners_for(const VipSpec& spec, const VipSet& current);
  // `spec`'s backends as a pool takes them, with their counters (kept from
  // backend_stats_, or new ones entered in `next_stats`).
  std::vector<Backend> backends_of(const VipSpec& spec, BackendStatsMap& next_stats) const;
  // Moves the counters of backends `next_stats` no longer has into removed_ (folding
  // those nobody references any more), then makes `next_stats` the current map.
  void retire_backend_stats(BackendStatsMap next_stats);

  std::vector<std::unique_ptr<WorkerStats>> worker_stats_;
  mutable std::mutex info_mu_;
  std::vector<WorkerInfo> worker_info_;
  SnapshotCell<VipSet> vips_;
  SnapshotCell<Config> config_;
  std::mutex writer_mu_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> released_{false};
  std::vector<InheritedListeners> inherited_;  // writers only; emptied by the first apply
  UniqueFd health_events_;                     // eventfd, see notify_health()
  bool applied_once_ = false;                  // writers only: a config was applied before
  PublishHook publish_hook_;                   // writers only
  // Backend counters by (vip, backend) name, kept across reloads, of proxy and forward
  // VIPs. Writers only.
  BackendStatsMap backend_stats_;
  // Counters of backends that changes removed, so that the backend counters still add
  // up to the worker counters: those still referenced (connections may be writing
  // them), and the folded sums of the others' running totals.
  struct RemovedBackends {
    std::vector<std::shared_ptr<BackendStats>> live;
    telemetry::BackendValues folded{};  // gauges stay 0
  };
  mutable std::mutex removed_mu_;
  RemovedBackends removed_;  // guarded by removed_mu_
  // The running totals of removed backends, summed (gauges 0).
  telemetry::BackendValues removed_counters() const;
};

// Binds a listening TCP socket with SO_REUSEPORT (non-blocking, close-on-exec).
Result<UniqueFd> bind_listener(const SocketAddress& address, int backlog);

// Fails (EADDRINUSE) when some socket already listens on `address`: another ringlbd (its
// SO_REUSEPORT listeners would share the clients with ours) or any other program. The
// error names the listening process when /proc shows it. Runtime::apply checks every
// VIP address it has not bound itself before binding it.
Result<void> check_address_free(const SocketAddress& address);

}  // namespace ringlb
