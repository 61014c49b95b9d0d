#include "ringlb/telemetry/snapshot.h"

namespace ringlb::telemetry {

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (uint64_t b : buckets) {
    total += b;
  }
  return total;
}

uint64_t Histogram::quantile(double quantile) const {
  const uint64_t total = count();
  if (total == 0) {
    return 0;
  }
  // The smallest bucket whose cumulative count reaches quantile * total.
  const double target = quantile * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (static_cast<double>(seen) >= target && seen != 0) {
      return bucket_upper_bound(i);
    }
  }
  return bucket_upper_bound(buckets.size() - 1);
}

Percentiles percentiles(const Histogram& histogram) {
  return Percentiles{.p50 = histogram.quantile(0.5),
                     .p90 = histogram.quantile(0.9),
                     .p99 = histogram.quantile(0.99)};
}

WorkerValues ProxyRows::totals() const {
  WorkerValues sums{};
  for (const auto& w : workers) {
    for (size_t k = 0; k < sums.size(); ++k) {
      sums[k] += w.counters[k];
    }
  }
  return sums;
}

}  // namespace ringlb::telemetry
