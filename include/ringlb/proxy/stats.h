// Counters of the proxy data plane. Each counter has one writer (a worker thread) and
// any number of readers (control plane, stats dump), so writes are relaxed
// load+store (no locked instruction) and reads are relaxed loads: a reader may see a
// value a few events old, never a torn one.
#pragma once

#include <algorithm>
#include <array>
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
#define RINGLB_WORKER_COUNTERS(X)                                                              \
  X(accepted, "client connections accepted")                                                   \
  X(active, "client connections open now")                                                     \
  X(closed, "client connections closed")                                                       \
  X(rejected_overload, "connections accepted at max_connections and closed at once")           \
  X(accept_errors, "accept failures (EMFILE, ENFILE, ...)")                                    \
  X(accept_pauses, "times accepting paused for lack of descriptors")                           \
  X(no_backend, "clients closed because no backend was eligible or reachable")                 \
  X(connect_refused, "backend connects refused")                                               \
  X(connect_timeouts, "backend connects timed out")                                            \
  X(connect_errors, "other backend connect failures")                                          \
  X(retries, "connects retried on another backend")                                            \
  X(idle_timeouts, "connections closed after idle_timeout_ms without traffic")                 \
  X(age_closes, "connections closed gracefully after max_connection_age_ms")                   \
  X(age_resets, "connections reset: no quiet moment within drain_timeout_ms of the age limit") \
  X(drain_closes, "connections still open when a drain deadline passed")                       \
  X(resets, "connections ended by an error, reset propagated")                                 \
  X(bytes_in, "bytes client to backend")                                                       \
  X(bytes_out, "bytes backend to client")                                                      \
  X(splice_calls, "splice(2) calls made by the pumps")                                         \
  X(copy_calls, "recv/send/write calls of the small-message copy path")                        \
  X(pipes_created, "pipes created (empty pipes are reused)")                                   \
  X(shutdown_closes, "connections reset by a backend's shutdown control")

// Values in log2 buckets: bucket 0 holds 0, bucket i holds [2^(i-1), 2^i). One writer.
class LogHistogram {
 public:
  static constexpr size_t kBuckets = 40;
  void record(uint64_t value) {
    sum_.add(value);
    const size_t bucket =
        value == 0 ? 0 : std::min<size_t>(64 - __builtin_clzll(value), kBuckets - 1);
    buckets_[bucket].add();
  }
  uint64_t bucket(size_t i) const { return buckets_[i].get(); }
  uint64_t sum() const { return sum_.get(); }
  // Upper bound of bucket i (what percentiles report: log-bucket resolution).
  static uint64_t upper_bound(size_t i) { return i == 0 ? 0 : (uint64_t{1} << i) - 1; }

 private:
  Counter buckets_[kBuckets];
  Counter sum_;
};

// The upper bound of the bucket holding the `quantile` (0..1) of the summed buckets;
// 0 when empty.
uint64_t histogram_quantile(const std::array<uint64_t, LogHistogram::kBuckets>& buckets,
                            double quantile);

struct alignas(64) WorkerStats {
#define RINGLB_DECLARE_COUNTER(name, help) Counter name;
  RINGLB_WORKER_COUNTERS(RINGLB_DECLARE_COUNTER)
#undef RINGLB_DECLARE_COUNTER
  LogHistogram connect_time_us;         // accept to backend connected (retries included)
  LogHistogram connection_duration_ms;  // accept to close
};

// Appends `prefix name value` lines for every counter of `s`.
void append_worker_stats(std::string& out, const std::string& prefix, const WorkerStats& s);

}  // namespace ringlb
