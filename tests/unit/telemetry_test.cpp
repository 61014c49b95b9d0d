// The counter snapshot's writers (telemetry/writers.h), without a daemon: stats.json reads
// back to the same rows, the three writers agree, names with dots survive, and a text
// that is no stats.json is refused with a message.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "ringlb/telemetry/writers.h"

namespace ringlb::telemetry {
namespace {

Snapshot sample_snapshot() {
  Snapshot s;
  s.time = 1700000000.25;
  ProxyRows proxy;
  for (uint32_t w = 0; w < 2; ++w) {
    WorkerRow row{.worker = w, .counters = {}, .cpu = w, .task_clock_ns = 1000 + w};
    row.counters[index(WorkerCounter::accepted)] = 10 + w;
    row.counters[index(WorkerCounter::active)] = 2;
    row.counters[index(WorkerCounter::bytes_in)] = 1u << 20;
    proxy.workers.push_back(row);
  }
  Histogram h;
  h.buckets[bucket_of(300)] = 5;
  h.buckets[bucket_of(5000)] = 1;
  h.sum = 5 * 300 + 5000;
  proxy.connect_time_us = Latency{.percentiles = percentiles(h), .histogram = h};
  proxy.connection_duration_ms = Latency{.percentiles = percentiles(h), .histogram = h};
  proxy.removed_backends[index(BackendCounter::connections)] = 3;
  VipRow vip{.name = "web.eu", .health_panic = true, .health_panics = 1, .backends = {}};
  BackendRow b{.name = "b1.rack2", .counters = {}};
  b.counters[index(BackendCounter::connections)] = 21;
  b.counters[index(BackendCounter::active)] = 4;
  vip.backends.push_back(b);
  proxy.vips.push_back(vip);
  s.proxy = proxy;
  s.xdp = XdpRows{.pin_path = "/sys/fs/bpf/ring\"lb", .verdicts = {}, .maps = std::nullopt};
  s.xdp->verdicts.push_back(VerdictRow{.verdict = "tx_forward", .counters = {7, 700}});
  s.xdp->flow_events.push_back(FlowEventRow{.event = "evict_embryonic", .count = 12});
  return s;
}

TEST(Telemetry, StatsJsonReadsBackToTheSameRows) {
  const Snapshot s = sample_snapshot();
  auto rows = parse_stats_json(stats_json(s));
  ASSERT_TRUE(rows) << rows.error().message;
  ProxyRows want = *s.proxy;
  // stats.json carries the percentiles only, not the histograms (snapshot.h).
  want.connect_time_us.histogram.reset();
  want.connection_duration_ms.histogram.reset();
  EXPECT_EQ(*rows, want);
}

TEST(Telemetry, StatsJsonIsJsonWithEveryPartAndEscapedStrings) {
  const auto json = nlohmann::json::parse(stats_json(sample_snapshot()));
  EXPECT_DOUBLE_EQ(json.at("time").get<double>(), 1700000000.25);
  EXPECT_EQ(json.at("xdp").at("pin_path").get<std::string>(), "/sys/fs/bpf/ring\"lb");
  for (const char* part : {"totals", "percentiles", "workers", "backends", "vips"}) {
    EXPECT_TRUE(json.at("proxy").contains(part)) << part;
  }
  EXPECT_EQ(json.at("proxy").at("totals").at("counters").at("accepted").get<uint64_t>(), 21u);
}

TEST(Telemetry, TheTextCarriesSumsPerWorkerAndDottedNamesWhole) {
  const std::string text = stats_text(sample_snapshot());
  for (const char* line :
       {"worker.0.accepted 10\n", "worker.1.accepted 11\n", "proxy.accepted 21\n",
        "proxy.active 4\n", "vip.web.eu.backend.b1.rack2.connections 21\n",
        "proxy.removed_backends.connections 3\n", "xdp.verdict.tx_forward.packets 7\n",
        "xdp.verdict.tx_forward.bytes 700\n", "xdp.flow_table.evict_embryonic 12\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "in:\n" << text;
  }
}

TEST(Telemetry, PrometheusHasHelpAndTypeForEveryFamilyAndOneSamplePerRow) {
  const std::string text = prometheus_text(sample_snapshot());
  std::istringstream in(text);
  std::string line;
  std::string family;
  int samples_of_accepted = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      std::string type;
      ASSERT_TRUE(std::getline(in, type));
      EXPECT_EQ(type.rfind("# TYPE " + family + " ", 0), 0u) << type;
      continue;
    }
    ASSERT_FALSE(line.empty());
    ASSERT_NE(line[0], '#') << line;
    // A sample belongs to the family announced last (histograms add suffixes).
    EXPECT_EQ(line.rfind(family, 0), 0u) << line << " after family " << family;
    samples_of_accepted += line.rfind("ringlb_worker_accepted_total{", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(samples_of_accepted, 2);
  EXPECT_NE(text.find("ringlb_xdp_flow_events_total{event=\"evict_embryonic\"} 12\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ringlb_xdp_packets_total{verdict=\"tx_forward\"} 7\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vip=\"web.eu\""), std::string::npos);
}

// Prometheus's conventions: base units (seconds, bytes) last before _total, _total on
// every counter; the latency histograms in seconds, their bounds converted exactly.
TEST(Telemetry, PrometheusNamesUseBaseUnitsAndHistogramsCountInSeconds) {
  const std::string text = prometheus_text(sample_snapshot());
  for (const char* want : {
           "# TYPE ringlb_connect_time_seconds histogram\n",
           // 300 us is in the bucket of 256..511 us; 5000 us in 4096..8191 us.
           "ringlb_connect_time_seconds_bucket{le=\"0.000255\"} 0\n",
           "ringlb_connect_time_seconds_bucket{le=\"0.000511\"} 5\n",
           "ringlb_connect_time_seconds_bucket{le=\"0.008191\"} 6\n",
           "ringlb_connect_time_seconds_bucket{le=\"+Inf\"} 6\n",
           "ringlb_connect_time_seconds_sum 0.0065\n",
           "ringlb_connect_time_seconds_count 6\n",
           "# TYPE ringlb_connection_duration_seconds histogram\n",
           "ringlb_connection_duration_seconds_bucket{le=\"0\"} 0\n",
           "ringlb_connection_duration_seconds_bucket{le=\"0.511\"} 5\n",
           "ringlb_connection_duration_seconds_bucket{le=\"549755813.887\"} 6\n",
           "ringlb_connection_duration_seconds_sum 6.5\n",
           "ringlb_worker_client_to_backend_bytes_total{worker=\"1\"} 1048576\n",
           "# TYPE ringlb_worker_backend_to_client_bytes_total counter\n",
           "# TYPE ringlb_backend_client_to_backend_bytes_total counter\n",
           "# TYPE ringlb_removed_backends_backend_to_client_bytes_total counter\n",
           "ringlb_vip_health_panics_total{vip=\"web.eu\"} 1\n",
       }) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "in:\n" << text;
  }
  for (const char* gone : {"microseconds", "milliseconds", "bytes_in", "bytes_out"}) {
    EXPECT_EQ(text.find(gone), std::string::npos) << gone;
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0 && line.ends_with(" counter")) {
      EXPECT_NE(line.find("_total counter"), std::string::npos) << line;
    }
  }
}

// Every family the writer has (the XDP verdicts too, which tests/ops cannot show without
// an XDP program) passes `promtool check metrics`: the format and Prometheus's lint.
TEST(Telemetry, PromtoolFindsNoProblemInAnyFamily) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no promtool (Debian package prometheus; tools/setup.sh installs it)";
  }
  const std::string path = testing::TempDir() + "ringlb-telemetry-metrics.txt";
  std::ofstream(path) << prometheus_text(sample_snapshot());
  FILE* promtool = popen(("promtool check metrics < " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(promtool, nullptr);
  std::string said;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), promtool) != nullptr) {
    said += buffer;
  }
  const int status = pclose(promtool);
  std::remove(path.c_str());
  EXPECT_EQ(status, 0) << said;
  EXPECT_EQ(said, "");
}

// docs/grafana-ringlb.json queries only names the writer has (a renamed metric fails here
// before a dashboard shows nothing).
TEST(Telemetry, TheGrafanaDashboardNamesOnlyMetricsThatExist) {
  std::ifstream file(RINGLB_SOURCE_DIR "/docs/grafana-ringlb.json");
  ASSERT_TRUE(file);
  std::stringstream dashboard;
  dashboard << file.rdbuf();
  std::set<std::string> names;  // families and sample names (with _bucket, _sum, _count)
  std::istringstream text(prometheus_text(sample_snapshot()));
  std::string line;
  while (std::getline(text, line)) {
    const std::string name = line.rfind("# TYPE ", 0) == 0
                                 ? line.substr(7, line.find(' ', 7) - 7)
                                 : line.substr(0, line.find_first_of("{ "));
    names.insert(name);
  }
  const std::string json = dashboard.str();
  // Every ringlb_[a-z0-9_]+ in it (a scan: GCC 12's std::regex trips -Wmaybe-uninitialized
  // in the sanitizer builds).
  size_t used = 0;
  const auto in_name = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (size_t at = json.find("ringlb_"); at != std::string::npos; at = json.find("ringlb_", at)) {
    size_t end = at + 7;
    while (end < json.size() && in_name(json[end])) {
      ++end;
    }
    const std::string name = json.substr(at, end - at);
    EXPECT_EQ(names.count(name), 1u) << name << " is no metric ringlbd serves";
    ++used;
    at = end;
  }
  EXPECT_GT(used, 20u);
}

TEST(Telemetry, ATextThatIsNoStatsJsonIsRefusedWithAReason) {
  for (const char* bad : {"", "not json", "[]", "{\"time\": 1}", "{\"proxy\": {\"workers\": 3}}"}) {
    auto rows = parse_stats_json(bad);
    ASSERT_FALSE(rows) << bad;
    EXPECT_FALSE(rows.error().message.empty()) << bad;
  }
}

}  // namespace
}  // namespace ringlb::telemetry
