// Counters of the proxy data plane. Each counter has one writer (a worker thread) and
// any number of readers (control plane, stats dump), so writes are relaxed
// load+store (no locked instruction) and reads are relaxed loads: a reader may see a
// value a few events old, never a torn one.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ringlb/model/model.h"
#include "ringlb/telemetry/counters.h"
#include "ringlb/telemetry/histogram.h"

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

// Values in log2 buckets (telemetry/histogram.h has the layout). One writer.
class LogHistogram {
 public:
  static constexpr size_t kBuckets = telemetry::kHistogramBuckets;
  void record(uint64_t value) {
    sum_.add(value);
    buckets_[telemetry::bucket_of(value)].add();
  }
  uint64_t bucket(size_t i) const { return buckets_[i].get(); }
  uint64_t sum() const { return sum_.get(); }

 private:
  Counter buckets_[kBuckets];
  Counter sum_;
};

// One worker's counters (telemetry/counters.h names them).
struct alignas(64) WorkerStats {
#define RINGLB_DECLARE_COUNTER(name, kind, help) Counter name;
  RINGLB_WORKER_COUNTERS(RINGLB_DECLARE_COUNTER)
#undef RINGLB_DECLARE_COUNTER
  LogHistogram connect_time_us;         // accept to backend connected (retries included)
  LogHistogram connection_duration_ms;  // accept to close
  // CLOCK_MONOTONIC ms of the worker loop's last tick: the daemon's watchdog pings systemd
  // only while every worker's is recent (a stuck worker stops the pings).
  std::atomic<uint64_t> heartbeat_ms{0};
  // Set once the worker accepts nothing more after Runtime::release_listeners().
  std::atomic<bool> accepts_stopped{false};
};

// The values of `s`'s counters, of `b`'s, and `histogram`'s buckets and sum: what a
// counter snapshot holds of them (relaxed loads, each a few events old at most).
telemetry::WorkerValues worker_values(const WorkerStats& s);
telemetry::BackendValues backend_values(const BackendStats& b);
telemetry::Histogram histogram_values(const LogHistogram& histogram);

}  // namespace ringlb
