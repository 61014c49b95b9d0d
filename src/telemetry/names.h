// Names the writers share: the latencies and their percentiles.
#pragma once

#include <array>
#include <string_view>

#include "ringlb/telemetry/snapshot.h"

namespace ringlb::telemetry {

struct LatencyName {
  std::string_view name;    // in `stats` and JSON: "proxy.<name>.p50"
  std::string_view metric;  // the Prometheus histogram, in seconds (Prometheus's base unit)
  std::string_view help;
  Latency ProxyRows::*member;
  uint64_t per_second;  // recorded values per second: 1000000 for us, 1000 for ms
};
inline constexpr std::array<LatencyName, 2> kLatencies{{
    {"connect_time_us", "ringlb_connect_time_seconds",
     "accept to backend connected, retries included", &ProxyRows::connect_time_us, 1'000'000},
    {"connection_duration_ms", "ringlb_connection_duration_seconds", "accept to close",
     &ProxyRows::connection_duration_ms, 1'000},
}};

struct PercentileName {
  std::string_view name;
  uint64_t Percentiles::*member;
};
inline constexpr std::array<PercentileName, 3> kPercentiles{{
    {"p50", &Percentiles::p50},
    {"p90", &Percentiles::p90},
    {"p99", &Percentiles::p99},
}};

// The perf counters of a worker row, in the order `stats` shows them.
struct PerfName {
  std::string_view name;
  std::optional<uint64_t> WorkerRow::*member;
};
inline constexpr std::array<PerfName, 3> kPerfCounters{{
    {"task_clock_ns", &WorkerRow::task_clock_ns},
    {"cycles", &WorkerRow::cycles},
    {"instructions", &WorkerRow::instructions},
}};

}  // namespace ringlb::telemetry
