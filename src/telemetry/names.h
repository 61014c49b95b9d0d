// Names the writers share: the latencies and their percentiles.
#pragma once

#include <array>
#include <string_view>

#include "ringlb/telemetry/snapshot.h"

namespace ringlb::telemetry {

struct LatencyName {
  std::string_view name;    // in `stats` and JSON: "proxy.<name>.p50"
  std::string_view metric;  // the Prometheus histogram
  std::string_view help;
  Latency ProxyRows::*member;
};
inline constexpr std::array<LatencyName, 2> kLatencies{{
    {"connect_time_us", "ringlb_connect_time_microseconds",
     "accept to backend connected, retries included", &ProxyRows::connect_time_us},
    {"connection_duration_ms", "ringlb_connection_duration_milliseconds", "accept to close",
     &ProxyRows::connection_duration_ms},
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
