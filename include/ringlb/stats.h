// Counters of the proxy data plane. Each counter has one writer (a worker thread) and
// any number of readers (control plane, stats dump), so writes are relaxed
// load+store (no locked instruction) and reads are relaxed loads: a reader may see a
// value a few events old, never a torn one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace ringlb {

class Counter {
 public:
  // Only the owning thread calls add().
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// One worker's counters: X(name, help). README.md lists them; `stats` prints them as
// "worker.<n>.<name> <value>".
#define RINGLB_WORKER_COUNTERS(X)                                                    \
  X(accepted, "client connections accepted")                                         \
  X(active, "client connections open now")                                           \
  X(closed, "client connections closed")                                             \
  X(rejected_overload, "connections accepted at max_connections and closed at once") \
  X(accept_errors, "accept failures (EMFILE, ENFILE, ...)")                          \
  X(accept_pauses, "times accepting paused for lack of descriptors")                 \
  X(no_backend, "clients closed because no backend was eligible or reachable")       \
  X(connect_refused, "backend connects refused")                                     \
  X(connect_timeouts, "backend connects timed out")                                  \
  X(connect_errors, "other backend connect failures")                                \
  X(retries, "connects retried on another backend")                                  \
  X(idle_timeouts, "connections closed after idle_timeout_ms without traffic")       \
  X(age_closes, "connections closed gracefully after max_connection_age_ms")         \
  X(drain_closes, "connections still open when a drain deadline passed")             \
  X(resets, "connections ended by an error, reset propagated")                       \
  X(bytes_in, "bytes client to backend")                                             \
  X(bytes_out, "bytes backend to client")                                            \
  X(splice_calls, "splice(2) calls made by the pumps")                               \
  X(copy_calls, "recv/send/write calls of the small-message copy path")              \
  X(pipes_created, "pipes created (empty pipes are reused)")

struct alignas(64) WorkerStats {
#define RINGLB_DECLARE_COUNTER(name, help) Counter name;
  RINGLB_WORKER_COUNTERS(RINGLB_DECLARE_COUNTER)
#undef RINGLB_DECLARE_COUNTER
};

// Appends `prefix name value` lines for every counter of `s`.
void append_worker_stats(std::string& out, const std::string& prefix, const WorkerStats& s);

}  // namespace ringlb
