// The counter snapshot's writers (telemetry/writers.h), without a daemon: stats.json reads
// back to the same rows, the three writers agree, names with dots survive, and a text
// that is no stats.json is refused with a message.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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
        "xdp.verdict.tx_forward.bytes 700\n"}) {
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
  EXPECT_NE(text.find("ringlb_xdp_packets_total{verdict=\"tx_forward\"} 7\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vip=\"web.eu\""), std::string::npos);
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
