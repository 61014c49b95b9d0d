// Writers of a counter snapshot (snapshot.h), and the one reader ringlb needs.
//
//   stats_text       the control tree's `stats` and ringlbd's --stats-file: one
//                    "name value" line per counter (docs/running.md, "Counters")
//   prometheus_text  the control tree's `metrics`: the Prometheus text format
//   stats_json       the control tree's `stats.json` (below)
//   sample_json      one line of `ringlb stats --json` (tests/cli/stats.schema.json)
//
// stats.json is one JSON object:
//   {"time": <Unix seconds>,
//    "proxy": {"totals": ..., "percentiles": ..., "workers": [...], "backends": [...],
//              "vips": [...]},
//    "xdp": {"pin_path": "...", "verdicts": [...]}}
// where every table is laid out as in `ringlb stats --json` (tables.h) and "xdp" is there
// only when an XDP program has pinned its maps (as the xdp.* lines of `stats`).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ringlb/result.h"
#include "ringlb/telemetry/snapshot.h"
#include "ringlb/telemetry/tables.h"

namespace ringlb::telemetry {

// Workers, proxy totals, percentiles, removed backends, then each VIP's health and
// backends; then the XDP verdicts (and, when read, its per-CPU, VIP and backend rows
// under the names `ringlb stats` gives them).
std::string stats_text(const Snapshot& snapshot);

// One family per counter (HELP, TYPE, one sample per worker / VIP / backend), the two
// latency histograms when the snapshot has them, and ringlb_xdp_packets_total by
// verdict. The XDP plane's per-CPU, VIP and backend rows have no metrics.
std::string prometheus_text(const Snapshot& snapshot);

std::string stats_json(const Snapshot& snapshot);

// {"time", "interval_s", "proxy": {"available", "control_dir", ...}, "xdp": {"available",
// "pin_path", ...}}, one line, with each row's rates when it has them. Rates are rounded
// to 0.01, time to 0.001.
std::string sample_json(double time, std::optional<double> interval_s, const Source& proxy,
                        const Source& xdp);

// The proxy part of a stats.json text. Fails, naming what is missing or of the wrong
// type, when the text is no stats.json.
Result<ProxyRows> parse_stats_json(std::string_view text);

}  // namespace ringlb::telemetry
