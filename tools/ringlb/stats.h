// Counter samples for `ringlb stats` and `ringlb top`.
//
// Two sources, each read without talking to a process:
//   - the proxy: <control_dir>/stats of a running ringlbd ("name value" lines);
//   - the XDP data plane: the per-CPU counter maps pinned under the pin path
//     (verdict_stats, vip_stats, backend_stats), named through the pinned `vips` and
//     `backends` maps.
// A source that is not there (no daemon, no program pinned) is a Source with
// available = false and a reason, not an error.
//
// Every source is a list of tables ("workers", "backends", "verdicts", ...) of rows;
// a row is a set of labels (worker 0, vip web, backend b1) and its counters. Rates are
// computed by matching rows of two samples by table and key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ringlb::cli {

struct Label {
  std::string name{};
  std::string value{};
  bool numeric = false;  // JSON: a number, not a string
};

struct Row {
  std::string key{};     // unique within its table; rates match rows by it
  std::string prefix{};  // the text output's name prefix ("worker.0", "vip.web.backend.b1")
  std::vector<Label> labels{};
  std::map<std::string, uint64_t> counters{};
  std::map<std::string, double> rates{};  // per second; filled by compute_rates
};

struct Table {
  std::string name{};   // "totals", "workers", "verdicts", ...
  bool single = false;  // one unlabeled row: JSON shows an object, not a list
  std::vector<Row> rows{};
};

struct Source {
  bool available = false;
  std::string location{};  // the control dir or the pin path
  std::string error{};     // why it is not available
  std::vector<Table> tables{};

  const Table* find(const std::string& name) const;
};

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

// True for counters that are levels, not running totals (no rate).
bool is_gauge(const std::string& counter);

// Whether the control filesystem is mounted at `dir` (per /proc/mounts).
bool control_fs_mounted(const std::string& dir);

std::string json_string(const std::string& text);

}  // namespace ringlb::cli
