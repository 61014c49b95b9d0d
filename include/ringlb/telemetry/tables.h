// A snapshot as tables of rows, the layout of tests/cli/stats.schema.json: the JSON
// writer writes it, `ringlb stats` prints it and computes rates on it, `ringlb top` and
// `ringlb status` read it. Derived from the typed rows (snapshot.h), never parsed.
//
// A row is a set of labels (worker 0; vip web, backend b1) and its counters; rows of two
// samples match by table and key, so rates can be computed. The proxy's tables are
// totals, percentiles, workers, backends and vips; the XDP plane's verdicts and, when
// the maps were read in full, cpus, vips and backends.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ringlb/telemetry/snapshot.h"

namespace ringlb::telemetry {

struct Label {
  std::string name{};
  std::string value{};
  bool numeric = false;  // JSON: a number, not a string
};

struct Row {
  std::string key{};     // unique within its table; rates match rows by it
  std::string prefix{};  // the name prefix in text ("worker.0", "vip.web.backend.b1")
  std::vector<Label> labels{};
  std::map<std::string, uint64_t> counters{};
  std::set<std::string> gauges{};         // the counters that are levels: no rate
  std::map<std::string, double> rates{};  // per second; filled by add_rates
};

struct Table {
  std::string name{};   // "totals", "workers", "verdicts", ...
  bool single = false;  // one unlabeled row: JSON shows an object, not a list
  std::vector<Row> rows{};
};

// One source of a sample: its tables, or why it is not available.
struct Source {
  bool available = false;
  std::string location{};  // the control dir or the pin path
  std::string error{};     // why it is not available
  std::vector<Table> tables{};

  const Table* find(const std::string& name) const;
};

std::vector<Table> tables(const ProxyRows& rows);
std::vector<Table> tables(const XdpRows& rows);

// Fills the rates of `now`'s running totals from `before`, `seconds` earlier. A row new
// in `now` counts from zero; a counter that went down (restart, maps recreated) has
// rate 0.
void add_rates(Source& now, const Source& before, double seconds);

}  // namespace ringlb::telemetry
