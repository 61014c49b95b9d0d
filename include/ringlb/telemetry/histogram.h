// Log2 histograms: the bucket layout the proxy records latencies in (LogHistogram,
// proxy/stats.h) and the writers read back. Bucket 0 holds 0, bucket i holds
// [2^(i-1), 2^i); a percentile is the upper bound of the bucket that holds it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace ringlb::telemetry {

inline constexpr size_t kHistogramBuckets = 40;

// The largest value bucket `i` holds.
constexpr uint64_t bucket_upper_bound(size_t i) {
  return i == 0 ? 0 : (uint64_t{1} << i) - 1;
}

// The bucket that holds `value`.
constexpr size_t bucket_of(uint64_t value) {
  if (value == 0) {
    return 0;
  }
  const size_t bucket = 64 - static_cast<size_t>(__builtin_clzll(value));
  return bucket < kHistogramBuckets ? bucket : kHistogramBuckets - 1;
}

// One histogram summed over workers.
struct Histogram {
  std::array<uint64_t, kHistogramBuckets> buckets{};
  uint64_t sum = 0;  // of the recorded values

  uint64_t count() const;
  // The upper bound of the bucket holding the `quantile` (0..1) of the values; 0 when
  // empty.
  uint64_t quantile(double quantile) const;
  bool operator==(const Histogram&) const = default;
};

// What `stats` shows of a histogram: p50, p90 and p99.
struct Percentiles {
  uint64_t p50 = 0;
  uint64_t p90 = 0;
  uint64_t p99 = 0;
  bool operator==(const Percentiles&) const = default;
};

Percentiles percentiles(const Histogram& histogram);

}  // namespace ringlb::telemetry
