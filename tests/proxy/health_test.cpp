// Health end to end: active checks, passive ejection, panic threshold and slow start,
// against backends that die, go silent or black-hole SYNs (issue 6).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "harness.h"

namespace ringlb::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Member {
  std::string name;
  std::string address;
};

std::string health_config(uint16_t port, const std::vector<Member>& members,
                          const std::string& vip_extra, const std::string& health,
                          int workers = 2) {
  std::string text = "[daemon]\nworkers = " + std::to_string(workers) +
                     "\ndrain_timeout_ms = 2000\n[[vip]]\nname = \"test\"\n"
                     "listen = \"127.0.0.1:" +
                     std::to_string(port) + "\"\n" + vip_extra + "[vip.health]\n" + health;
  for (const auto& m : members) {
    text += "[[vip.backend]]\nname = \"" + m.name + "\"\naddress = \"" + m.address + "\"\n";
  }
  return text;
}

// One request through the VIP: true when the echo came back whole.
bool echo_ok(uint16_t port, const std::string& text, int timeout_ms = 3000) {
  Conn conn = Conn::open("127.0.0.1", port, timeout_ms);
  if (!conn.ok() || !conn.send_all(text, timeout_ms)) {
    return false;
  }
  conn.shutdown_write();
  return conn.read_to_eof(timeout_ms) == text;
}

// Polls the daemon's counters until `done` holds or `limit` passes; returns the time
// it took, or nullopt.
std::optional<Clock::duration> wait_for(
    Ringlbd& lb, const std::function<bool(std::map<std::string, uint64_t>&)>& done,
    Clock::duration limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    auto s = lb.stats();
    if (done(s)) {
      return Clock::now() - start;
    }
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

// The control tree's health word of a backend once it reads `want` (the monitor may
// take a moment), or what it last read after 2 s. Without the tree (it needs root and
// FUSE), `want`: there is nothing to check.
std::string health_word(const Ringlbd& lb, const std::string& backend, const std::string& want) {
  const auto deadline = Clock::now() + 2s;
  std::string word;
  do {
    std::ifstream in(lb.control_dir() + "/vips/test/backends/" + backend + "/health");
    if (!(in >> word)) {
      return want;
    }
    if (word == want) {
      return word;
    }
    std::this_thread::sleep_for(20ms);
  } while (Clock::now() < deadline);
  return word;
}

uint64_t ms(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

TEST(Health, KilledBackendResetsItsClientsSparesOthersAndIsAvoidedWithinOneInterval) {
  std::optional<Backend> dying(std::in_place, "d", BackendMode::name);
  Backend healthy("h", BackendMode::name);
  const uint16_t port = free_port();
  constexpr int kIntervalMs = 300;
  Ringlbd lb(health_config(
      port, {{"d", dying->address()}, {"h", healthy.address()}}, "connect_retries = 1\n",
      "interval_ms = " + std::to_string(kIntervalMs) +
          "\ntimeout_ms = 200\nfall = 1\nrise = 1\neject_after_failures = 0\n"));
  // Round robin on each of two workers: four connections reach both backends.
  std::vector<Conn> conns;
  Conn* victim = nullptr;
  Conn* survivor = nullptr;
  for (int i = 0; i < 4; ++i) {
    conns.push_back(Conn::open("127.0.0.1", port));
    ASSERT_TRUE(conns.back().ok());
  }
  for (auto& c : conns) {
    const std::string who = c.read_exact(2).value_or("?");
    (who == "d\n" ? victim : survivor) = &c;
  }
  ASSERT_NE(victim, nullptr);
  ASSERT_NE(survivor, nullptr);
  // A transfer in progress on both.
  std::string block(256 * 1024, '\0');
  for (size_t i = 0; i < block.size(); ++i) {
    block[i] = static_cast<char>(stream_byte(7, i));
  }
  ASSERT_TRUE(survivor->send_all(block));
  ASSERT_EQ(survivor->read_exact(block.size()), block);
  ASSERT_TRUE(victim->send_all("1234"));
  ASSERT_EQ(victim->read_exact(4).value_or("?"), "1234");

  dying->reset_all();
  dying.reset();  // and its listener is gone: connects are refused
  const auto killed = Clock::now();
  char buf[16];
  const ssize_t r = victim->read_some(buf, sizeof(buf), 2000);
  EXPECT_TRUE(r == -ECONNRESET || r == 0) << "the victim must see the end, got " << r;
  // Every other connection is untouched: its bytes keep flowing, intact.
  ASSERT_TRUE(survivor->send_all(block));
  EXPECT_EQ(survivor->read_exact(block.size()), block);

  auto down = wait_for(
      lb, [](auto& s) { return s["vip.test.backend.d.healthy"] == 0; }, 5s);
  ASSERT_TRUE(down) << "the health check never took d out";
  const uint64_t detected_ms = ms(Clock::now() - killed);
  // Its next check starts at most one interval after the kill and fails at once
  // (refused); the poll of the counters adds a little.
  EXPECT_LE(detected_ms, kIntervalMs + 250u);
  EXPECT_EQ(health_word(lb, "d", "down"), "down");
  auto before = lb.stats();
  for (int i = 0; i < 20; ++i) {
    Conn c = Conn::open("127.0.0.1", port);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.read_exact(2).value_or("?"), "h\n") << "client " << i;
  }
  auto after = lb.stats();
  EXPECT_EQ(after["vip.test.backend.d.connect_refused"],
            before["vip.test.backend.d.connect_refused"])
      << "new connections must not even try d";
  EXPECT_EQ(after["proxy.retries"], before["proxy.retries"]);
  EXPECT_GE(after["vip.test.backend.d.health_check_failures"], 1u);
  EXPECT_EQ(after["vip.test.backend.h.health_check_failures"], 0u);
}

TEST(Health, BackendThatAcceptsAndNeverAnswersFailsSendExpectAndIsTakenOut) {
  SilentListener mute(/*black_hole_syns=*/false);
  Backend good("good", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(health_config(port, {{"mute", mute.address()}, {"good", good.address()}}, "",
                           "interval_ms = 200\ntimeout_ms = 100\nfall = 2\nrise = 2\n"
                           "send = \"ping\\n\"\nexpect = \"ping\"\n"));
  auto down = wait_for(
      lb, [](auto& s) { return s["vip.test.backend.mute.healthy"] == 0; }, 5s);
  ASSERT_TRUE(down) << "mute connects fine but never answers: its check must fail";
  EXPECT_LT(ms(*down), 1500u);
  EXPECT_EQ(health_word(lb, "mute", "down"), "down");
  auto before = lb.stats();
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    failed += echo_ok(port, "request " + std::to_string(i), 2000) ? 0 : 1;
  }
  EXPECT_EQ(failed, 0);
  auto after = lb.stats();
  EXPECT_EQ(after["vip.test.backend.mute.connections"],
            before["vip.test.backend.mute.connections"]);
  EXPECT_EQ(
      after["vip.test.backend.good.connections"] - before["vip.test.backend.good.connections"],
      20u);
  EXPECT_GE(after["vip.test.backend.mute.health_check_failures"], 2u);
  EXPECT_EQ(after["vip.test.backend.good.health_check_failures"], 0u);
  EXPECT_GE(after["vip.test.backend.good.health_checks"], 2u);
  EXPECT_EQ(after["vip.test.health_panic"], 0u);
}

TEST(Health, SynBlackHoleTimesOutRetriesIsEjectedAndTriedAgainLater) {
  SilentListener hole(/*black_hole_syns=*/true);
  Backend good("good", BackendMode::echo);
  const uint16_t port = free_port();
  // Passive ejection only: no active checks.
  Ringlbd lb(health_config(port, {{"hole", hole.address()}, {"good", good.address()}},
                           "connect_timeout_ms = 200\nconnect_retries = 1\n",
                           "type = \"none\"\neject_after_failures = 2\nejection_ms = 1500\n"
                           "max_ejection_ms = 10000\n"));
  // Before the ejection: clients that meet the hole wait out one timeout, then the
  // retry serves them. None fails.
  int failed = 0;
  for (int i = 0; i < 8 && lb.stat("vip.test.backend.hole.ejections") == 0; ++i) {
    failed += echo_ok(port, "before " + std::to_string(i)) ? 0 : 1;
  }
  EXPECT_EQ(failed, 0);
  auto ejected = lb.stats();
  ASSERT_EQ(ejected["vip.test.backend.hole.ejections"], 1u);
  // Two timeouts eject it; a client already on its way may have met it once more.
  const uint64_t timeouts = ejected["vip.test.backend.hole.connect_timeouts"];
  EXPECT_GE(timeouts, 2u);
  EXPECT_LE(timeouts, 3u);
  EXPECT_EQ(ejected["vip.test.backend.hole.healthy"], 0u);
  EXPECT_EQ(health_word(lb, "hole", "ejected"), "ejected");
  // After it: zero failures, no waiting, the hole is not tried.
  const auto start = Clock::now();
  for (int i = 0; i < 20; ++i) {
    failed += echo_ok(port, "after " + std::to_string(i)) ? 0 : 1;
  }
  EXPECT_EQ(failed, 0);
  EXPECT_LT(ms(Clock::now() - start), 1000u) << "no client may wait out a connect timeout";
  auto after = lb.stats();
  EXPECT_EQ(after["vip.test.backend.hole.connect_timeouts"], timeouts);
  EXPECT_EQ(after["proxy.retries"], ejected["proxy.retries"]);
  // When the ejection ends it is tried again; two more timeouts eject it again, for
  // twice as long.
  auto back = wait_for(
      lb, [](auto& s) { return s["vip.test.backend.hole.healthy"] == 1; }, 3s);
  ASSERT_TRUE(back);
  for (int i = 0; i < 8 && lb.stat("vip.test.backend.hole.ejections") < 2; ++i) {
    failed += echo_ok(port, "again " + std::to_string(i)) ? 0 : 1;
  }
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(lb.stat("vip.test.backend.hole.ejections"), 2u);
  // Still out after the first ejection's length: the second one lasts 3 s.
  std::this_thread::sleep_for(1700ms);
  EXPECT_EQ(lb.stat("vip.test.backend.hole.healthy"), 0u);
}

TEST(Health, PanicThresholdKeepsTrafficFlowingWhenEveryCheckFails) {
  Backend a("a", BackendMode::echo);
  Backend b("b", BackendMode::echo);
  const uint16_t port = free_port();
  // The checks expect a reply the backends never give: every check fails.
  const std::string checks =
      "interval_ms = 100\ntimeout_ms = 80\nfall = 1\nsend = \"ping\"\nexpect = \"pong\"\n";
  Ringlbd lb(health_config(port, {{"a", a.address()}, {"b", b.address()}}, "",
                           checks + "panic_threshold = 50\n"));
  auto panic = wait_for(
      lb,
      [](auto& s) {
        return s["vip.test.health_panic"] == 1 &&
               s["vip.test.backend.a.health_check_failures"] >= 1 &&
               s["vip.test.backend.b.health_check_failures"] >= 1;
      },
      5s);
  ASSERT_TRUE(panic);
  EXPECT_EQ(health_word(lb, "a", "down"), "down") << "panic uses it, but its state tells the truth";
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    failed += echo_ok(port, "panic " + std::to_string(i)) ? 0 : 1;
  }
  EXPECT_EQ(failed, 0);
  auto s = lb.stats();
  EXPECT_GT(s["vip.test.backend.a.connections"], 0u);
  EXPECT_GT(s["vip.test.backend.b.connections"], 0u);
  EXPECT_EQ(s["vip.test.health_panics"], 1u);
}

TEST(Health, WithoutAPanicThresholdFailedChecksStopTraffic) {
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(health_config(port, {{"a", a.address()}}, "",
                           "interval_ms = 100\ntimeout_ms = 80\nfall = 1\nsend = \"ping\"\n"
                           "expect = \"pong\"\npanic_threshold = 0\n"));
  ASSERT_TRUE(wait_for(
      lb, [](auto& s) { return s["vip.test.backend.a.healthy"] == 0; }, 5s));
  EXPECT_FALSE(echo_ok(port, "x", 1000));
  EXPECT_GE(lb.worker_total("no_backend"), 1u);
  EXPECT_EQ(lb.stat("vip.test.health_panic"), 0u);
}

TEST(Health, SlowStartRampsTheShareOfAnAddedBackend) {
  Backend a("a", BackendMode::echo);
  Backend b("b", BackendMode::echo);
  const uint16_t port = free_port();
  const std::string health = "type = \"none\"\nslow_start_ms = 6000\n";
  const std::string vip = "policy = \"weighted\"\n";
  // One worker: one smooth weighted sequence, so the shares below are exact.
  Ringlbd lb(health_config(port, {{"a", a.address()}}, vip, health, 1));
  lb.write_config(health_config(port, {{"a", a.address()}, {"b", b.address()}}, vip, health, 1));
  lb.signal(SIGHUP);
  ASSERT_TRUE(wait_for(
      lb, [](auto& s) { return s.count("vip.test.backend.b.connections") == 1; }, 5s));
  const auto added = Clock::now();
  auto served_by_b = [&](int clients) {
    const uint64_t before = b.connections();
    for (int i = 0; i < clients; ++i) {
      EXPECT_TRUE(echo_ok(port, "share"));
    }
    return b.connections() - before;
  };
  // First tenth of the ramp: b's weight is a tenth of a's, so one pick in 11 is b.
  const uint64_t early = served_by_b(15);
  const uint64_t early_ms = ms(Clock::now() - added);
  ASSERT_LT(early_ms, 600u) << "the first batch must fit in the ramp's first tenth";
  EXPECT_GE(early, 1u) << "slow start sends some traffic at once";
  EXPECT_LE(early, 2u) << "but only a tenth of b's weight";
  EXPECT_EQ(health_word(lb, "b", "slow_start"), "slow_start");
  // After slow_start_ms: an equal share, alternating.
  std::this_thread::sleep_until(added + 6100ms);
  EXPECT_EQ(health_word(lb, "b", "up"), "up");
  const uint64_t late = served_by_b(20);
  EXPECT_GE(late, 9u);
  EXPECT_LE(late, 11u);
}

}  // namespace
}  // namespace ringlb::test
