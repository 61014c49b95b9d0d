// stats_text: "name value" lines.
#include <string>

#include "names.h"
#include "ringlb/telemetry/writers.h"

namespace ringlb::telemetry {

namespace {

void line(std::string& out, std::string_view prefix, std::string_view name, uint64_t value) {
  out.append(prefix).append(name).append(" ").append(std::to_string(value)).append("\n");
}

template <size_t N>
void lines(std::string& out, std::string_view prefix, const std::array<CounterInfo, N>& infos,
           const std::array<uint64_t, N>& values) {
  for (size_t k = 0; k < N; ++k) {
    line(out, prefix, infos[k].name, values[k]);
  }
}

void proxy_text(std::string& out, const ProxyRows& rows) {
  for (const auto& w : rows.workers) {
    const std::string prefix = "worker." + std::to_string(w.worker) + ".";
    lines(out, prefix, kWorkerCounters, w.counters);
    line(out, prefix, "cpu", w.cpu);
    for (const auto& perf : kPerfCounters) {
      if (const auto& value = w.*perf.member) {
        line(out, prefix, perf.name, *value);
      }
    }
  }
  lines(out, "proxy.", kWorkerCounters, rows.totals());
  for (const auto& latency : kLatencies) {
    const std::string prefix = "proxy." + std::string(latency.name) + ".";
    for (const auto& p : kPercentiles) {
      line(out, prefix, p.name, (rows.*latency.member).percentiles.*p.member);
    }
  }
  for (size_t k = 0; k < kBackendCounters.size(); ++k) {
    if (kBackendCounters[k].kind == Kind::counter) {
      line(out, "proxy.removed_backends.", kBackendCounters[k].name, rows.removed_backends[k]);
    }
  }
  for (const auto& vip : rows.vips) {
    const std::string prefix = "vip." + vip.name + ".";
    line(out, prefix, "health_panic", vip.health_panic ? 1 : 0);
    line(out, prefix, "health_panics", vip.health_panics);
    for (const auto& b : vip.backends) {
      lines(out, prefix + "backend." + b.name + ".", kBackendCounters, b.counters);
    }
  }
}

}  // namespace

std::string stats_text(const Snapshot& snapshot) {
  std::string out;
  if (snapshot.proxy) {
    proxy_text(out, *snapshot.proxy);
  }
  if (snapshot.xdp) {
    // XDP rows under the prefix `ringlb stats` gives them: packets and bytes, or (the
    // flow table's) one count per event.
    for (const auto& table : tables(*snapshot.xdp)) {
      for (const auto& row : table.rows) {
        if (row.counters.contains("packets")) {
          line(out, row.prefix, ".packets", row.counters.at("packets"));
          line(out, row.prefix, ".bytes", row.counters.at("bytes"));
          continue;
        }
        for (const auto& [name, value] : row.counters) {
          line(out, row.prefix, "." + name, value);
        }
      }
    }
  }
  return out;
}

}  // namespace ringlb::telemetry
