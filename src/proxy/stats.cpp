#include "ringlb/proxy/stats.h"

namespace ringlb {

void append_worker_stats(std::string& out, const std::string& prefix, const WorkerStats& s) {
#define RINGLB_APPEND_COUNTER(name, help) \
  out += prefix + #name + " " + std::to_string(s.name.get()) + "\n";
  RINGLB_WORKER_COUNTERS(RINGLB_APPEND_COUNTER)
#undef RINGLB_APPEND_COUNTER
}

uint64_t histogram_quantile(const std::array<uint64_t, LogHistogram::kBuckets>& buckets,
                            double quantile) {
  uint64_t total = 0;
  for (uint64_t b : buckets) {
    total += b;
  }
  if (total == 0) {
    return 0;
  }
  // The smallest bucket whose cumulative count reaches quantile * total.
  const double target = quantile * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (static_cast<double>(seen) >= target && seen != 0) {
      return LogHistogram::upper_bound(i);
    }
  }
  return LogHistogram::upper_bound(buckets.size() - 1);
}

}  // namespace ringlb
