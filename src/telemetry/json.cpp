// stats_json, sample_json and parse_stats_json, with nlohmann-json. Objects keep the
// order keys are written in (ordered_json): labels, then counters, then rates.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "names.h"
#include "ringlb/telemetry/writers.h"

namespace ringlb::telemetry {

namespace {

using Json = nlohmann::ordered_json;

// `value` to `decimals` places (n / 100 is the double nearest to that decimal, which
// prints as the decimal).
double rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

Json label_value(const Label& label) {
  uint64_t number = 0;
  const char* end = label.value.data() + label.value.size();
  if (label.numeric && std::from_chars(label.value.data(), end, number).ptr == end) {
    return number;
  }
  return label.value;
}

Json row_json(const Row& row) {
  Json out = Json::object();
  for (const auto& label : row.labels) {
    out[label.name] = label_value(label);
  }
  Json counters = Json::object();
  for (const auto& [name, value] : row.counters) {
    counters[name] = value;
  }
  out["counters"] = std::move(counters);
  if (!row.rates.empty()) {
    Json rates = Json::object();
    for (const auto& [name, rate] : row.rates) {
      rates[name] = rounded(rate, 2);
    }
    out["rates"] = std::move(rates);
  }
  return out;
}

void put_tables(Json& out, const std::vector<Table>& tables) {
  for (const auto& table : tables) {
    if (table.single) {
      out[table.name] = row_json(table.rows.at(0));
      continue;
    }
    Json rows = Json::array();
    for (const auto& row : table.rows) {
      rows.push_back(row_json(row));
    }
    out[table.name] = std::move(rows);
  }
}

Json source_json(const Source& source, const char* location_name) {
  Json out = Json::object();
  out["available"] = source.available;
  out[location_name] = source.location;
  if (!source.available) {
    out["error"] = source.error;
    return out;
  }
  put_tables(out, source.tables);
  return out;
}

// Invalid UTF-8 (a path given on the command line) is replaced, not thrown on.
std::string dump(const Json& doc) {
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---- Reading the proxy part back ----

template <size_t N>
void read_values(const Json& counters, const std::array<CounterInfo, N>& infos,
                 std::array<uint64_t, N>& values, const std::string& prefix = "") {
  for (size_t k = 0; k < N; ++k) {
    values[k] = counters.at(prefix + std::string(infos[k].name)).template get<uint64_t>();
  }
}

WorkerRow read_worker(const Json& row) {
  WorkerRow w{.worker = row.at("worker").get<uint32_t>()};
  const Json& counters = row.at("counters");
  read_values(counters, kWorkerCounters, w.counters);
  w.cpu = counters.at("cpu").get<uint64_t>();
  for (const auto& perf : kPerfCounters) {
    if (const auto it = counters.find(std::string(perf.name)); it != counters.end()) {
      w.*perf.member = it->get<uint64_t>();
    }
  }
  return w;
}

ProxyRows read_proxy(const Json& proxy) {
  ProxyRows rows;
  for (const auto& row : proxy.at("workers")) {
    rows.workers.push_back(read_worker(row));
  }
  const Json& percentiles = proxy.at("percentiles").at("counters");
  for (const auto& latency : kLatencies) {
    for (const auto& p : kPercentiles) {
      (rows.*latency.member).percentiles.*p.member =
          percentiles.at(std::string(latency.name) + "." + std::string(p.name)).get<uint64_t>();
    }
  }
  const Json& totals = proxy.at("totals").at("counters");
  for (size_t k = 0; k < kBackendCounters.size(); ++k) {
    if (kBackendCounters[k].kind == Kind::counter) {
      rows.removed_backends[k] =
          totals.at("removed_backends." + std::string(kBackendCounters[k].name)).get<uint64_t>();
    }
  }
  for (const auto& row : proxy.at("vips")) {
    const Json& counters = row.at("counters");
    rows.vips.push_back(VipRow{.name = row.at("vip").get<std::string>(),
                               .health_panic = counters.at("health_panic").get<uint64_t>() != 0,
                               .health_panics = counters.at("health_panics").get<uint64_t>(),
                               .backends = {}});
  }
  for (const auto& row : proxy.at("backends")) {
    const auto vip = row.at("vip").get<std::string>();
    BackendRow b{.name = row.at("backend").get<std::string>()};
    read_values(row.at("counters"), kBackendCounters, b.counters);
    auto it = std::find_if(rows.vips.begin(), rows.vips.end(),
                           [&](const VipRow& v) { return v.name == vip; });
    if (it == rows.vips.end()) {
      throw std::invalid_argument("backend " + b.name + " of vip " + vip + ", not in vips");
    }
    it->backends.push_back(std::move(b));
  }
  return rows;
}

}  // namespace

std::string stats_json(const Snapshot& snapshot) {
  Json doc = Json::object();
  doc["time"] = rounded(snapshot.time, 3);
  if (snapshot.proxy) {
    Json proxy = Json::object();
    put_tables(proxy, tables(*snapshot.proxy));
    doc["proxy"] = std::move(proxy);
  }
  if (snapshot.xdp) {
    Json xdp = Json::object();
    xdp["pin_path"] = snapshot.xdp->pin_path;
    put_tables(xdp, tables(*snapshot.xdp));
    doc["xdp"] = std::move(xdp);
  }
  return dump(doc) + "\n";
}

std::string sample_json(double time, std::optional<double> interval_s, const Source& proxy,
                        const Source& xdp) {
  Json doc = Json::object();
  doc["time"] = rounded(time, 3);
  doc["interval_s"] = interval_s ? Json(rounded(*interval_s, 2)) : Json(nullptr);
  doc["proxy"] = source_json(proxy, "control_dir");
  doc["xdp"] = source_json(xdp, "pin_path");
  return dump(doc);
}

Result<ProxyRows> parse_stats_json(std::string_view text) {
  try {
    return read_proxy(Json::parse(text).at("proxy"));
  } catch (const std::exception& e) {
    return Error{std::string("not a stats.json: ") + e.what(), EINVAL};
  }
}

}  // namespace ringlb::telemetry
