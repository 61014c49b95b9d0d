// Backends that refuse, never answer or die: retries, prompt failure, counters.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "harness.h"

namespace ringlb::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string echo_once(uint16_t port, const std::string& text) {
  Conn conn = Conn::open("127.0.0.1", port);
  if (!conn.ok() || !conn.send_all(text)) {
    return "<connect failed>";
  }
  conn.shutdown_write();
  return conn.read_to_eof().value_or("<read failed>");
}

std::string config_with(uint16_t port,
                        const std::vector<std::pair<std::string, std::string>>& backends,
                        const std::string& vip_extra) {
  std::string text = "[daemon]\nworkers = 1\n[[vip]]\nname = \"test\"\nlisten = \"127.0.0.1:" +
                     std::to_string(port) + "\"\npolicy = \"round_robin\"\n" + vip_extra;
  for (const auto& [name, address] : backends) {
    text += "[[vip.backend]]\nname = \"" + name + "\"\naddress = \"" + address + "\"\n";
  }
  return text;
}

TEST(Failures, RefusedBackendIsRetriedOnTheNext) {
  Backend good("good", BackendMode::echo);
  const std::string refused = "127.0.0.1:" + std::to_string(free_port());
  const uint16_t port = free_port();
  Ringlbd lb(
      config_with(port, {{"refused", refused}, {"good", good.address()}}, "connect_retries = 1\n"));
  auto before = lb.stats();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(echo_once(port, "try " + std::to_string(i)), "try " + std::to_string(i));
  }
  // Every refusal led to exactly one retry, and every client was served by `good`.
  auto after = lb.stats();
  auto delta = [&](const std::string& key) { return after[key] - before[key]; };
  EXPECT_GE(delta("vip.test.backend.refused.connect_refused"), 5u);
  EXPECT_EQ(delta("worker.0.retries"), delta("vip.test.backend.refused.connect_refused"));
  EXPECT_EQ(delta("vip.test.backend.good.connections"), 10u);
  EXPECT_EQ(after["vip.test.backend.refused.connections"], 0u);
  EXPECT_EQ(after["worker.0.no_backend"], 0u);
}

TEST(Failures, SilentBackendTimesOutAndTheNextServes) {
  SilentListener hole(/*black_hole_syns=*/true);
  Backend good("good", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(config_with(port, {{"hole", hole.address()}, {"good", good.address()}},
                         "connect_timeout_ms = 200\nconnect_retries = 1\n"));
  auto before = lb.stats();
  const auto start = Clock::now();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(echo_once(port, "x"), "x");
  }
  const auto elapsed = Clock::now() - start;
  // Each client that met the silent backend first waited out one 200 ms timeout.
  auto after = lb.stats();
  auto delta = [&](const std::string& key) { return after[key] - before[key]; };
  const uint64_t timeouts = delta("vip.test.backend.hole.connect_timeouts");
  EXPECT_GE(timeouts, 2u);
  EXPECT_EQ(delta("worker.0.connect_timeouts"), timeouts);
  EXPECT_EQ(delta("worker.0.retries"), timeouts);
  EXPECT_GE(elapsed, std::chrono::milliseconds(190 * timeouts));
  EXPECT_LT(elapsed, std::chrono::milliseconds(300 * timeouts + 1000));
}

TEST(Failures, AllBackendsDownClosesTheClientPromptlyAndCountsWhy) {
  const std::string r1 = "127.0.0.1:" + std::to_string(free_port());
  const std::string r2 = "127.0.0.1:" + std::to_string(free_port());
  const uint16_t port = free_port();
  Ringlbd lb(config_with(port, {{"r1", r1}, {"r2", r2}}, "connect_retries = 2\n"));
  auto before = lb.stats();
  const auto start = Clock::now();
  Conn conn = Conn::open("127.0.0.1", port);
  // Both refusals take microseconds: the reset may even beat the client's own check of
  // its connect, which then fails. Either way the client learns at once; the counters
  // below show that ringlbd accepted it and gave up on it.
  if (conn.ok()) {
    char buf[16];
    const ssize_t r = conn.read_some(buf, sizeof(buf), 2000);
    EXPECT_EQ(r, -ECONNRESET) << "the client must learn at once that nothing serves it";
  }
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
  auto after = lb.stats();
  auto delta = [&](const std::string& key) { return after[key] - before[key]; };
  EXPECT_EQ(delta("worker.0.no_backend"), 1u);
  // Two distinct backends exist: each is tried once (not three times), both refuse.
  EXPECT_EQ(delta("vip.test.backend.r1.connect_refused"), 1u);
  EXPECT_EQ(delta("vip.test.backend.r2.connect_refused"), 1u);
  EXPECT_EQ(delta("vip.test.backend.r1.failures"), 1u);
  // The client sees the reset as the worker closes the connection; the worker counts it
  // inactive when that close completes, a moment later (milliseconds under TSan).
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (lb.stat("worker.0.active") != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(lb.stat("worker.0.active"), 0u);
}

TEST(Failures, BackendResetReachesTheClientAndSparesOthers) {
  Backend dying("d", BackendMode::name);
  Backend healthy("h", BackendMode::name);
  const uint16_t port = free_port();
  Ringlbd lb(config_with(port, {{"d", dying.address()}, {"h", healthy.address()}}, ""));
  const uint64_t resets_before = lb.worker_total("resets");
  // Round robin: two connections land on different backends; find out which is which.
  Conn one = Conn::open("127.0.0.1", port);
  Conn two = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(one.ok() && two.ok());
  const std::string first = one.read_exact(2).value_or("?");
  const std::string second = two.read_exact(2).value_or("?");
  ASSERT_NE(first, second);
  Conn& victim = first == "d\n" ? one : two;
  Conn& survivor = first == "d\n" ? two : one;
  ASSERT_TRUE(victim.send_all("1234"));
  ASSERT_TRUE(survivor.send_all("5678"));
  EXPECT_EQ(victim.read_exact(4).value_or("?"), "1234");
  EXPECT_EQ(survivor.read_exact(4).value_or("?"), "5678");
  dying.reset_all();
  char buf[16];
  EXPECT_EQ(victim.read_some(buf, sizeof(buf), 2000), -ECONNRESET);
  ASSERT_TRUE(survivor.send_all("still here"));
  EXPECT_EQ(survivor.read_exact(10).value_or("?"), "still here");
  EXPECT_EQ(lb.worker_total("resets") - resets_before, 1u);
}

}  // namespace
}  // namespace ringlb::test
