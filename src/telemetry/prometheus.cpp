// prometheus_text: the Prometheus text exposition format, version 0.0.4.
//
// Names follow Prometheus's conventions: base units (seconds, bytes) named last before
// `_total`, `_total` on every counter, labels worker, vip, backend and verdict only (no
// label whose values grow with traffic, such as client addresses).
#include <array>
#include <string>

#include "names.h"
#include "ringlb/telemetry/writers.h"

namespace ringlb::telemetry {

namespace {

// A label value as the format quotes it: backslash, double quote and newline escaped.
std::string quoted(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  // One sample; `labels` is "" or `{a="x",b="y"}`.
  void sample(std::string_view name, std::string_view labels, uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  void sample(std::string_view name, std::string_view labels, std::string_view value) {
    out_.append(name).append(labels).append(" ").append(value).append("\n");
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// The counters whose table name (shared with `stats` and JSON) does not end in their
// unit, by the name Prometheus wants: what is counted, then the unit.
struct UnitName {
  std::string_view counter;
  std::string_view metric;
};
constexpr std::array<UnitName, 2> kUnitNames{{
    {"bytes_in", "client_to_backend_bytes"},
    {"bytes_out", "backend_to_client_bytes"},
}};

// ringlb_worker_accepted_total for a counter, ringlb_backend_active for a gauge,
// ringlb_worker_client_to_backend_bytes_total for bytes_in.
std::string metric_name(std::string_view prefix, const CounterInfo& info) {
  std::string_view name = info.name;
  for (const auto& unit : kUnitNames) {
    name = unit.counter == info.name ? unit.metric : name;
  }
  return std::string(prefix) + std::string(name) + (info.kind == Kind::gauge ? "" : "_total");
}

// `value` units of which `per_second` (a power of ten) make a second, as exact decimal
// seconds: 1023 at 1000000 per second is "0.001023".
std::string seconds(uint64_t value, uint64_t per_second) {
  std::string out = std::to_string(value / per_second);
  std::string fraction = std::to_string(value % per_second + per_second).substr(1);
  while (!fraction.empty() && fraction.back() == '0') {
    fraction.pop_back();
  }
  return fraction.empty() ? out : out + "." + fraction;
}

std::string_view type_name(Kind kind) {
  return kind == Kind::gauge ? "gauge" : "counter";
}

void histogram(Exposition& out, const LatencyName& latency, const Histogram& h) {
  const std::string name(latency.metric);
  out.family(name, "histogram", latency.help);
  uint64_t cumulative = 0;
  // Values are whole units, so a bucket's largest value is its exact upper bound.
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    const std::string le = seconds(bucket_upper_bound(i), latency.per_second);
    out.sample(name + "_bucket", "{le=\"" + le + "\"}", cumulative);
  }
  out.sample(name + "_bucket", "{le=\"+Inf\"}", cumulative);
  out.sample(name + "_sum", "", seconds(h.sum, latency.per_second));
  out.sample(name + "_count", "", cumulative);
}

void proxy_metrics(Exposition& out, const ProxyRows& rows) {
  for (size_t k = 0; k < kWorkerCounters.size(); ++k) {
    const std::string name = metric_name("ringlb_worker_", kWorkerCounters[k]);
    out.family(name, type_name(kWorkerCounters[k].kind), kWorkerCounters[k].help);
    for (const auto& w : rows.workers) {
      out.sample(name, "{worker=\"" + std::to_string(w.worker) + "\"}", w.counters[k]);
    }
  }
  for (const auto& latency : kLatencies) {
    if (const auto& h = (rows.*latency.member).histogram) {
      histogram(out, latency, *h);
    }
  }
  for (size_t k = 0; k < kBackendCounters.size(); ++k) {
    if (kBackendCounters[k].kind == Kind::counter) {
      const std::string name = metric_name("ringlb_removed_backends_", kBackendCounters[k]);
      out.family(name, "counter", "summed over the backends changes removed, see docs/running.md");
      out.sample(name, "", rows.removed_backends[k]);
    }
  }
  out.family("ringlb_vip_health_panic", "gauge",
             "1 while too few backends are usable (all are used)");
  for (const auto& vip : rows.vips) {
    out.sample("ringlb_vip_health_panic", "{vip=" + quoted(vip.name) + "}",
               vip.health_panic ? 1 : 0);
  }
  out.family("ringlb_vip_health_panics_total", "counter", "times the pool entered panic");
  for (const auto& vip : rows.vips) {
    out.sample("ringlb_vip_health_panics_total", "{vip=" + quoted(vip.name) + "}",
               vip.health_panics);
  }
  for (size_t k = 0; k < kBackendCounters.size(); ++k) {
    const std::string name = metric_name("ringlb_backend_", kBackendCounters[k]);
    out.family(name, type_name(kBackendCounters[k].kind), kBackendCounters[k].help);
    for (const auto& vip : rows.vips) {
      for (const auto& b : vip.backends) {
        out.sample(name, "{vip=" + quoted(vip.name) + ",backend=" + quoted(b.name) + "}",
                   b.counters[k]);
      }
    }
  }
}

}  // namespace

std::string prometheus_text(const Snapshot& snapshot) {
  Exposition out;
  if (snapshot.proxy) {
    proxy_metrics(out, *snapshot.proxy);
  }
  if (snapshot.xdp && !snapshot.xdp->verdicts.empty()) {
    out.family("ringlb_xdp_packets_total", "counter", "packets by XDP verdict, all CPUs");
    for (const auto& v : snapshot.xdp->verdicts) {
      out.sample("ringlb_xdp_packets_total", "{verdict=" + quoted(v.verdict) + "}",
                 v.counters.packets);
    }
  }
  if (snapshot.xdp && !snapshot.xdp->flow_events.empty()) {
    out.family("ringlb_xdp_flow_events_total", "counter",
               "forward-mode flow table inserts, promotions and evictions, all CPUs");
    for (const auto& e : snapshot.xdp->flow_events) {
      out.sample("ringlb_xdp_flow_events_total", "{event=" + quoted(e.event) + "}", e.count);
    }
  }
  return out.take();
}

}  // namespace ringlb::telemetry
