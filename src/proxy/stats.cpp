#include "ringlb/proxy/stats.h"

namespace ringlb {

telemetry::WorkerValues worker_values(const WorkerStats& s) {
  using telemetry::WorkerCounter;
  telemetry::WorkerValues values{};
#define RINGLB_GET_COUNTER(name, kind, help) \
  values[telemetry::index(WorkerCounter::name)] = s.name.get();
  RINGLB_WORKER_COUNTERS(RINGLB_GET_COUNTER)
#undef RINGLB_GET_COUNTER
  return values;
}

telemetry::BackendValues backend_values(const BackendStats& b) {
  using enum telemetry::BackendCounter;
  constexpr auto relaxed = std::memory_order_relaxed;
  telemetry::BackendValues v{};
  v[index(active)] = static_cast<uint64_t>(b.active.load(relaxed));
  v[index(connections)] = b.connections.load(relaxed);
  v[index(bytes_in)] = b.bytes_in.load(relaxed);
  v[index(bytes_out)] = b.bytes_out.load(relaxed);
  v[index(connect_refused)] = b.connect_refused.load(relaxed);
  v[index(connect_timeouts)] = b.connect_timeouts.load(relaxed);
  v[index(connect_errors)] = b.connect_errors.load(relaxed);
  v[index(failures)] = b.failures();
  v[index(healthy)] = b.healthy.load(relaxed) ? 1 : 0;
  v[index(health_checks)] = b.health_checks.load(relaxed);
  v[index(health_check_failures)] = b.health_check_failures.load(relaxed);
  v[index(health_changes)] = b.health_changes.load(relaxed);
  v[index(ejections)] = b.ejections.load(relaxed);
  return v;
}

telemetry::Histogram histogram_values(const LogHistogram& histogram) {
  telemetry::Histogram out;
  for (size_t i = 0; i < out.buckets.size(); ++i) {
    out.buckets[i] = histogram.bucket(i);
  }
  out.sum = histogram.sum();
  return out;
}

}  // namespace ringlb
