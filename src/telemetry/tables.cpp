#include "ringlb/telemetry/tables.h"

#include <string>

#include "names.h"

namespace ringlb::telemetry {

const Table* Source::find(const std::string& name) const {
  for (const auto& t : tables) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

namespace {

template <size_t N>
void put(Row& row, const std::array<CounterInfo, N>& infos, const std::array<uint64_t, N>& values,
         std::string_view name_prefix = "") {
  for (size_t k = 0; k < N; ++k) {
    const std::string name = std::string(name_prefix) + std::string(infos[k].name);
    row.counters[name] = values[k];
    if (infos[k].kind == Kind::gauge) {
      row.gauges.insert(name);
    }
  }
}

Row totals_row(const ProxyRows& rows) {
  Row row{.key = "", .prefix = "proxy"};
  put(row, kWorkerCounters, rows.totals());
  for (size_t k = 0; k < kBackendCounters.size(); ++k) {
    if (kBackendCounters[k].kind == Kind::counter) {
      row.counters["removed_backends." + std::string(kBackendCounters[k].name)] =
          rows.removed_backends[k];
    }
  }
  return row;
}

Row percentiles_row(const ProxyRows& rows) {
  Row row{.key = "", .prefix = "proxy"};
  for (const auto& latency : kLatencies) {
    for (const auto& p : kPercentiles) {
      const std::string name = std::string(latency.name) + "." + std::string(p.name);
      row.counters[name] = (rows.*latency.member).percentiles.*p.member;
      row.gauges.insert(name);
    }
  }
  return row;
}

Row worker_row(const WorkerRow& w) {
  const std::string index = std::to_string(w.worker);
  Row row{.key = index, .prefix = "worker." + index};
  row.labels.push_back({.name = "worker", .value = index, .numeric = true});
  put(row, kWorkerCounters, w.counters);
  row.counters["cpu"] = w.cpu;
  row.gauges.insert("cpu");
  for (const auto& perf : kPerfCounters) {
    if (const auto& value = w.*perf.member) {
      row.counters[std::string(perf.name)] = *value;
    }
  }
  return row;
}

Row backend_row(const VipRow& vip, const BackendRow& b) {
  Row row{.key = vip.name + "/" + b.name, .prefix = "vip." + vip.name + ".backend." + b.name};
  row.labels.push_back({.name = "vip", .value = vip.name});
  row.labels.push_back({.name = "backend", .value = b.name});
  put(row, kBackendCounters, b.counters);
  return row;
}

Row vip_row(const VipRow& vip) {
  Row row{.key = vip.name, .prefix = "vip." + vip.name};
  row.labels.push_back({.name = "vip", .value = vip.name});
  row.counters["health_panic"] = vip.health_panic ? 1 : 0;
  row.counters["health_panics"] = vip.health_panics;
  row.gauges.insert("health_panic");
  return row;
}

Row packets_row(std::string key, std::string prefix, const Packets& counters) {
  Row row{.key = std::move(key), .prefix = std::move(prefix)};
  row.counters["packets"] = counters.packets;
  row.counters["bytes"] = counters.bytes;
  return row;
}

std::vector<Table> xdp_map_tables(const XdpMapRows& maps) {
  Table cpus{.name = "cpus"};
  for (const auto& c : maps.cpus) {
    const std::string index = std::to_string(c.cpu);
    Row row = packets_row(index, "xdp.cpu." + index, c.counters);
    row.labels.push_back({.name = "cpu", .value = index, .numeric = true});
    cpus.rows.push_back(std::move(row));
  }
  Table vips{.name = "vips"};
  for (const auto& v : maps.vips) {
    const std::string id = std::to_string(v.vip_id);
    Row row = packets_row(id, "xdp.vip." + (v.name.empty() ? v.address : v.name), v.counters);
    row.labels.push_back({.name = "vip_id", .value = id, .numeric = true});
    row.labels.push_back({.name = "address", .value = v.address});
    if (!v.name.empty()) {
      row.labels.push_back({.name = "name", .value = v.name});
    }
    row.labels.push_back({.name = "mode", .value = v.mode});
    vips.rows.push_back(std::move(row));
  }
  Table backends{.name = "backends"};
  for (const auto& b : maps.backends) {
    const std::string id = std::to_string(b.backend_id);
    Row row = packets_row(id, "xdp.backend." + b.address, b.counters);
    row.labels.push_back({.name = "backend_id", .value = id, .numeric = true});
    row.labels.push_back({.name = "address", .value = b.address});
    if (!b.names.empty()) {
      row.labels.push_back({.name = "names", .value = b.names});
    }
    backends.rows.push_back(std::move(row));
  }
  return {std::move(cpus), std::move(vips), std::move(backends)};
}

}  // namespace

std::vector<Table> tables(const ProxyRows& rows) {
  Table totals{.name = "totals", .single = true, .rows = {totals_row(rows)}};
  Table percentiles{.name = "percentiles", .single = true, .rows = {percentiles_row(rows)}};
  Table workers{.name = "workers"};
  for (const auto& w : rows.workers) {
    workers.rows.push_back(worker_row(w));
  }
  Table backends{.name = "backends"};
  Table vips{.name = "vips"};
  for (const auto& vip : rows.vips) {
    for (const auto& b : vip.backends) {
      backends.rows.push_back(backend_row(vip, b));
    }
    vips.rows.push_back(vip_row(vip));
  }
  return {std::move(totals), std::move(percentiles), std::move(workers), std::move(backends),
          std::move(vips)};
}

std::vector<Table> tables(const XdpRows& rows) {
  std::vector<Table> out;
  Table verdicts{.name = "verdicts"};
  for (const auto& v : rows.verdicts) {
    Row row = packets_row(v.verdict, "xdp.verdict." + v.verdict, v.counters);
    row.labels.push_back({.name = "verdict", .value = v.verdict});
    verdicts.rows.push_back(std::move(row));
  }
  out.push_back(std::move(verdicts));
  if (!rows.flow_events.empty()) {
    Table flows{.name = "flow_table", .single = true};
    Row row{.key = "", .prefix = "xdp.flow_table"};
    for (const auto& e : rows.flow_events) {
      row.counters[e.event] = e.count;
    }
    flows.rows.push_back(std::move(row));
    out.push_back(std::move(flows));
  }
  if (rows.maps) {
    for (auto& t : xdp_map_tables(*rows.maps)) {
      out.push_back(std::move(t));
    }
  }
  return out;
}

void add_rates(Source& now, const Source& before, double seconds) {
  if (seconds <= 0) {
    return;
  }
  for (auto& table : now.tables) {
    const Table* old_table = before.find(table.name);
    for (auto& row : table.rows) {
      const Row* old_row = nullptr;
      for (size_t i = 0; old_table != nullptr && i < old_table->rows.size(); ++i) {
        if (old_table->rows[i].key == row.key) {
          old_row = &old_table->rows[i];
          break;
        }
      }
      for (const auto& [name, value] : row.counters) {
        if (row.gauges.count(name) != 0) {
          continue;
        }
        uint64_t old_value = 0;  // a new row counts from zero
        if (old_row != nullptr) {
          const auto it = old_row->counters.find(name);
          old_value = it != old_row->counters.end() ? it->second : 0;
        }
        row.rates[name] =
            value >= old_value ? static_cast<double>(value - old_value) / seconds : 0.0;
      }
    }
  }
}

}  // namespace ringlb::telemetry
