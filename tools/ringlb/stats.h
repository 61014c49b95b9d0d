// Counter samples for `ringlb stats`, `ringlb top` and `ringlb status`.
//
// Two sources, each read without talking to a process:
//   - the proxy: <control_dir>/stats.json of a running ringlbd (telemetry/writers.h);
//   - the XDP data plane: the per-CPU counter maps pinned under the pin path
//     (verdict_stats, vip_stats, backend_stats), named through the pinned state maps.
// Each is read into the typed counter snapshot (telemetry/snapshot.h) and shown as its
// tables (telemetry/tables.h). A source that is not there (no daemon, no program
// pinned) is a Source with available = false and a reason, not an error.
#pragma once

#include <string>

#include "ringlb/telemetry/tables.h"

namespace ringlb::cli {

using telemetry::Label;
using telemetry::Row;
using telemetry::Source;
using telemetry::Table;

struct Sample {
  double time = 0;  // seconds, CLOCK_MONOTONIC
  double unix_time = 0;
  Source proxy;
  Source xdp;
};

Source read_proxy_source(const std::string& control_dir);
Source read_xdp_source(const std::string& pin_path);
Sample take_sample(const std::string& control_dir, const std::string& pin_path);

// Fills `now`'s rates from the counters of `before` (gauges get none).
void compute_rates(Sample& now, const Sample& before);

// Whether the control filesystem is mounted at `dir` (per /proc/mounts).
bool control_fs_mounted(const std::string& dir);

}  // namespace ringlb::cli
