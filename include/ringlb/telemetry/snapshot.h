// A counter snapshot: every counter of the proxy (ringlbd) and of the XDP data plane at
// one moment, typed. Sources fill it (the proxy: Runtime::fill_snapshot; the XDP plane:
// the control tree and `ringlb stats` read the pinned maps) and writers render it at
// the edge (writers.h): the control tree's `stats`, `metrics` and `stats.json`, and
// `ringlb stats`. Nothing renders text to parse it back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ringlb/telemetry/counters.h"
#include "ringlb/telemetry/histogram.h"

namespace ringlb::telemetry {

// ---- The proxy ----------------------------------------------------------------------

struct WorkerRow {
  uint32_t worker = 0;
  WorkerValues counters{};
  uint64_t cpu = 0;  // the CPU the worker is pinned to (0 when not pinned)
  // The worker thread's perf counters; nullopt where the machine has no such counter.
  std::optional<uint64_t> task_clock_ns{};
  std::optional<uint64_t> cycles{};
  std::optional<uint64_t> instructions{};
  bool operator==(const WorkerRow&) const = default;
};

struct BackendRow {
  std::string name{};
  BackendValues counters{};
  bool operator==(const BackendRow&) const = default;
};

// A proxy VIP: its pool's health and its backends, in pool order.
struct VipRow {
  std::string name{};
  bool health_panic = false;   // too few usable backends: every candidate is used
  uint64_t health_panics = 0;  // times the pool entered panic
  std::vector<BackendRow> backends{};
  bool operator==(const VipRow&) const = default;
};

// A latency summed over workers. The live counters have the histogram (`metrics` shows
// its buckets); stats.json carries the percentiles only, so what is read back from it
// has none.
struct Latency {
  Percentiles percentiles{};
  std::optional<Histogram> histogram{};
  bool operator==(const Latency&) const = default;
};

struct ProxyRows {
  std::vector<WorkerRow> workers{};  // by index
  Latency connect_time_us{};         // accept to backend connected, retries included
  Latency connection_duration_ms{};  // accept to close
  // The running totals of backends that changes removed, summed, so that backend counters
  // still add up to worker counters (gauges stay 0).
  BackendValues removed_backends{};
  std::vector<VipRow> vips{};

  // The worker counters summed over workers ("proxy.<counter>").
  WorkerValues totals() const;
  bool operator==(const ProxyRows&) const = default;
};

// ---- The XDP data plane -------------------------------------------------------------

struct Packets {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  bool operator==(const Packets&) const = default;
};

struct VerdictRow {
  std::string verdict{};  // xdp::verdict_name
  Packets counters{};
  bool operator==(const VerdictRow&) const = default;
};

struct XdpCpuRow {
  uint32_t cpu = 0;
  Packets counters{};  // every verdict on that CPU
  bool operator==(const XdpCpuRow&) const = default;
};

struct XdpVipRow {
  uint32_t vip_id = 0;
  std::string address{};  // "10.0.0.10:80/tcp", "[2001:db8::1]:443/tcp"
  std::string name{};     // from the state maps; empty when they do not name it
  std::string mode{};     // "forward" or "steer"
  Packets counters{};
  bool operator==(const XdpVipRow&) const = default;
};

struct XdpBackendRow {
  uint32_t backend_id = 0;
  std::string address{};  // the IP
  std::string names{};    // "vip/backend" of each VIP that has it, comma-separated; may be empty
  Packets counters{};
  bool operator==(const XdpBackendRow&) const = default;
};

// What the per-CPU maps hold besides the verdict sums: `ringlb stats` reads them; the
// control tree's files carry the verdicts only.
struct XdpMapRows {
  std::vector<XdpCpuRow> cpus{};
  std::vector<XdpVipRow> vips{};          // by vip id
  std::vector<XdpBackendRow> backends{};  // by backend id
  bool operator==(const XdpMapRows&) const = default;
};

// A forward-mode flow-table event (enum ringlb_flow_event), summed over CPUs.
struct FlowEventRow {
  std::string event{};  // "insert_embryonic", "promoted", "evict_embryonic", ...
  uint64_t count = 0;
  bool operator==(const FlowEventRow&) const = default;
};

struct XdpRows {
  std::string pin_path{};              // where the maps are pinned
  std::vector<VerdictRow> verdicts{};  // enum ringlb_verdict order, summed over CPUs
  // enum ringlb_flow_event order; empty when the pinned maps predate flow_stats
  std::vector<FlowEventRow> flow_events{};
  std::optional<XdpMapRows> maps{};
  bool operator==(const XdpRows&) const = default;
};

// ---- One snapshot -------------------------------------------------------------------

struct Snapshot {
  double time = 0;                   // Unix time of the reading, seconds
  std::optional<ProxyRows> proxy{};  // nullopt: no proxy counters in it
  std::optional<XdpRows> xdp{};      // nullopt: no XDP program has pinned its maps
};

}  // namespace ringlb::telemetry
