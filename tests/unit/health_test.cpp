// The health state machines (ringlb/health.h) with an injected clock, their effect on
// the policies (slow start), and the [vip.health] config table.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/model/health.h"
#include "ringlb/policy/policy.h"

namespace ringlb {
namespace {

HealthSpec spec_with(uint32_t rise, uint32_t fall) {
  HealthSpec spec;
  spec.rise = rise;
  spec.fall = fall;
  return spec;
}

TEST(BackendHealth, FallConsecutiveFailuresTakeItDown) {
  const HealthSpec spec = spec_with(2, 3);
  BackendHealth h;
  EXPECT_TRUE(h.usable());
  EXPECT_FALSE(h.on_check(false, spec, 10));
  EXPECT_FALSE(h.on_check(false, spec, 20));
  EXPECT_FALSE(h.on_check(true, spec, 30));  // a pass breaks the streak
  EXPECT_FALSE(h.on_check(false, spec, 40));
  EXPECT_FALSE(h.on_check(false, spec, 50));
  EXPECT_TRUE(h.usable());
  EXPECT_TRUE(h.on_check(false, spec, 60));
  EXPECT_FALSE(h.usable());
  EXPECT_EQ(h.state(spec, 60), HealthState::down);
}

TEST(BackendHealth, RiseConsecutivePassesBringItBack) {
  const HealthSpec spec = spec_with(2, 1);
  BackendHealth h;
  EXPECT_TRUE(h.on_check(false, spec, 10));
  EXPECT_FALSE(h.on_check(true, spec, 20));
  EXPECT_FALSE(h.on_check(false, spec, 30));  // a failure breaks the streak
  EXPECT_FALSE(h.on_check(true, spec, 40));
  EXPECT_FALSE(h.usable());
  EXPECT_TRUE(h.on_check(true, spec, 50));
  EXPECT_TRUE(h.usable());
  EXPECT_EQ(h.state(spec, 50), HealthState::up);  // no slow start configured
}

TEST(BackendHealth, EjectionBackOffDoublesUpToTheCapAndASuccessResetsIt) {
  HealthSpec spec = spec_with(1, 1);
  spec.ejection_ms = 100;
  spec.max_ejection_ms = 500;
  BackendHealth h;
  uint64_t now = 1000;
  std::vector<uint64_t> lengths;
  for (int i = 0; i < 5; ++i) {
    h.eject(spec, now);
    EXPECT_FALSE(h.usable());
    EXPECT_EQ(h.state(spec, now), HealthState::ejected);
    lengths.push_back(h.ejected_until_ms() - now);
    now = h.ejected_until_ms();
    EXPECT_TRUE(h.tick(now));  // tried again once its time is up
    EXPECT_TRUE(h.usable());
  }
  EXPECT_EQ(lengths, (std::vector<uint64_t>{100, 200, 400, 500, 500}));
  h.on_success();
  EXPECT_EQ(h.next_ejection_ms(spec), 100u);
}

TEST(BackendHealth, EjectionLastsUntilItsTime) {
  HealthSpec spec = spec_with(1, 1);
  spec.ejection_ms = 300;
  BackendHealth h;
  h.eject(spec, 1000);
  EXPECT_FALSE(h.tick(1299));
  EXPECT_FALSE(h.usable());
  EXPECT_TRUE(h.tick(1300));
  EXPECT_TRUE(h.usable());
  EXPECT_FALSE(h.tick(1301));  // nothing left to end
}

TEST(BackendHealth, AnEjectedBackendThatIsAlsoDownStaysUnusableWhenTheEjectionEnds) {
  HealthSpec spec = spec_with(1, 1);
  BackendHealth h;
  h.on_check(false, spec, 100);
  h.eject(spec, 100);
  EXPECT_TRUE(h.tick(100 + spec.ejection_ms));
  EXPECT_FALSE(h.usable());
  EXPECT_EQ(h.state(spec, 5000), HealthState::down);
}

TEST(BackendHealth, SlowStartRampsInTenthsOfTheElapsedTime) {
  HealthSpec spec = spec_with(1, 1);
  spec.slow_start_ms = 1000;
  BackendHealth h;
  h.on_check(false, spec, 100);
  EXPECT_EQ(h.ramp_permille(spec, 100), 1000u) << "never ramped: a start-up backend";
  h.on_check(true, spec, 2000);  // comes back
  EXPECT_EQ(h.ramp_permille(spec, 2000), 100u) << "at least a tenth at once";
  EXPECT_EQ(h.ramp_permille(spec, 2199), 100u);
  EXPECT_EQ(h.ramp_permille(spec, 2200), 200u);
  EXPECT_EQ(h.ramp_permille(spec, 2550), 500u);
  EXPECT_EQ(h.ramp_permille(spec, 2999), 900u);
  EXPECT_EQ(h.state(spec, 2999), HealthState::slow_start);
  EXPECT_EQ(h.ramp_permille(spec, 3000), 1000u);
  EXPECT_EQ(h.state(spec, 3000), HealthState::up);
  // The monitor wakes exactly when the weight next changes.
  EXPECT_EQ(h.next_ramp_step_ms(spec, 2000), 2200u);
  EXPECT_EQ(h.next_ramp_step_ms(spec, 2200), 2300u);
  EXPECT_EQ(h.next_ramp_step_ms(spec, 2950), 3000u);
  EXPECT_EQ(h.next_ramp_step_ms(spec, 3000), 0u);
}

TEST(BackendHealth, SlowStartAlsoFollowsAnEjection) {
  HealthSpec spec = spec_with(1, 1);
  spec.slow_start_ms = 1000;
  spec.ejection_ms = 100;
  BackendHealth h;
  h.eject(spec, 500);
  h.tick(600);
  EXPECT_EQ(h.ramp_permille(spec, 600), 100u);
  EXPECT_EQ(h.ramp_permille(spec, 1600), 1000u);
}

VipSpec vip_of(size_t n, uint32_t panic_threshold) {
  VipSpec vip;
  vip.name = "v";
  vip.health = spec_with(1, 1);
  vip.health.panic_threshold = panic_threshold;
  for (size_t i = 0; i < n; ++i) {
    vip.backends.push_back(BackendSpec{.name = "b" + std::to_string(i), .address = {}});
  }
  return vip;
}

TEST(VipHealth, PanicBelowTheThresholdUsesEveryBackend) {
  const VipSpec vip = vip_of(4, 50);
  VipHealth health;
  health.sync(vip);
  health.find("b0")->on_check(false, vip.health, 10);
  health.find("b1")->on_check(false, vip.health, 10);
  EXPECT_FALSE(health.panic(vip)) << "2 of 4 usable is exactly 50%";
  EXPECT_FALSE(health.verdict(vip, vip.backends[0], false, 10).usable);
  health.find("b2")->eject(vip.health, 10);  // passive ejection counts too
  ASSERT_TRUE(health.panic(vip));
  for (const auto& b : vip.backends) {
    EXPECT_TRUE(health.verdict(vip, b, true, 10).usable) << b.name;
  }
  // The state still tells the truth about each backend.
  EXPECT_EQ(health.verdict(vip, vip.backends[0], true, 10).state, HealthState::down);
  EXPECT_EQ(health.verdict(vip, vip.backends[2], true, 10).state, HealthState::ejected);
  EXPECT_EQ(health.verdict(vip, vip.backends[3], true, 10).state, HealthState::up);
}

TEST(VipHealth, ThresholdZeroNeverPanics) {
  const VipSpec vip = vip_of(2, 0);
  VipHealth health;
  health.sync(vip);
  health.find("b0")->on_check(false, vip.health, 10);
  health.find("b1")->on_check(false, vip.health, 10);
  EXPECT_FALSE(health.panic(vip));
}

TEST(VipHealth, PanicCountsOnlyBackendsThatTakeTraffic) {
  VipSpec vip = vip_of(4, 50);
  vip.backends[2].state = AdminState::drain;
  vip.backends[3].weight = 0;
  VipHealth health;
  health.sync(vip);
  health.find("b0")->on_check(false, vip.health, 10);
  EXPECT_FALSE(health.panic(vip)) << "1 of 2 candidates usable";
  health.find("b1")->on_check(false, vip.health, 10);
  EXPECT_TRUE(health.panic(vip));
}

TEST(VipHealth, BackendsAddedAtRunTimeStartSlowAndRemovedOnesAreForgotten) {
  VipSpec vip = vip_of(1, 50);
  vip.health.slow_start_ms = 1000;
  VipHealth health;
  health.sync(vip);
  EXPECT_EQ(health.verdict(vip, vip.backends[0], false, 100).ramp_permille, 1000u);
  health.find("b0")->on_check(false, vip.health, 150);
  vip.backends.push_back(BackendSpec{.name = "new", .address = {}});
  health.sync(vip);
  health.find("new")->start_slow_start(200);
  EXPECT_EQ(health.verdict(vip, vip.backends[1], false, 200).ramp_permille, 100u);
  EXPECT_EQ(health.verdict(vip, vip.backends[1], false, 200).state, HealthState::slow_start);
  EXPECT_FALSE(health.verdict(vip, vip.backends[0], false, 200).usable) << "b0 kept its state";
  vip.backends.erase(vip.backends.begin());
  health.sync(vip);
  EXPECT_EQ(health.find("b0"), nullptr);
}

// -- slow start in the policies ----------------------------------------------------------

std::map<std::string, int> shares(PolicyKind kind, uint32_t ramp_of_second, int picks) {
  std::vector<Backend> backends;
  for (const char* name : {"old", "new"}) {
    backends.push_back(Backend{
        .spec = {.name = name, .address = {*IpAddress::parse("127.0.0.1"), 9000}, .weight = 1},
        .healthy = true,
        .stats = std::make_shared<BackendStats>(),
        .ramp_permille = std::string_view(name) == "new" ? ramp_of_second : 1000,
    });
  }
  auto policy =
      make_policy(PolicyPlan::make(Pool::build(std::move(backends), PoolOptions{}), kind), 0);
  std::map<std::string, int> counts;
  for (int i = 0; i < picks; ++i) {
    counts[policy->pick(Client{}, TriedBackends{})->spec.name]++;
  }
  return counts;
}

TEST(SlowStart, WeightedGivesTheRampedShareExactly) {
  auto counts = shares(PolicyKind::weighted, 100, 1100);  // weights 10:1
  EXPECT_EQ(counts["old"], 1000);
  EXPECT_EQ(counts["new"], 100);
  counts = shares(PolicyKind::weighted, 1000, 1000);
  EXPECT_EQ(counts["new"], 500);
}

TEST(SlowStart, RandomGivesAboutTheRampedShare) {
  const auto counts = shares(PolicyKind::random, 250, 100000);  // 1 : 0.25 -> 20%
  EXPECT_NEAR(counts.at("new") / 100000.0, 0.2, 0.01);
}

TEST(SlowStart, LeastRequestScalesByTheRampedWeight) {
  // Both idle: least_request compares (active+1)/weight, so the ramping backend scores
  // worse and the full-weight one wins every pick.
  const auto counts = shares(PolicyKind::least_request, 500, 100);
  EXPECT_EQ(counts.at("old"), 100);
}

// -- [vip.health] --------------------------------------------------------------------------

constexpr const char* kVipHead =
    "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'\n";

TEST(HealthConfig, ParsesEveryKey) {
  const std::string text = std::string(kVipHead) +
                           "[vip.health]\ntype='tcp'\ninterval_ms=500\ntimeout_ms=200\nrise=3\n"
                           "fall=4\nsend=\"PING\\r\\n\"\nexpect='+PONG'\neject_after_failures=7\n"
                           "ejection_ms=250\nmax_ejection_ms=8000\npanic_threshold=30\n"
                           "slow_start_ms=10000\n";
  auto config = parse_config(text, "h.toml");
  ASSERT_TRUE(config) << config.error().message;
  const HealthSpec& h = config->vips[0].health;
  EXPECT_EQ(h.type, CheckType::tcp);
  EXPECT_EQ(h.interval_ms, 500u);
  EXPECT_EQ(h.timeout_ms, 200u);
  EXPECT_EQ(h.rise, 3u);
  EXPECT_EQ(h.fall, 4u);
  EXPECT_EQ(h.send, "PING\r\n");
  EXPECT_EQ(h.expect, "+PONG");
  EXPECT_EQ(h.eject_after_failures, 7u);
  EXPECT_EQ(h.ejection_ms, 250u);
  EXPECT_EQ(h.max_ejection_ms, 8000u);
  EXPECT_EQ(h.panic_threshold, 30u);
  EXPECT_EQ(h.slow_start_ms, 10000u);
}

// Without the table a VIP has no active checks, but passive ejection and the panic
// threshold keep their documented defaults.
TEST(HealthConfig, WithoutTheTablePassiveEjectionIsOnByDefault) {
  auto config = parse_config(kVipHead, "h.toml");
  ASSERT_TRUE(config) << config.error().message;
  const HealthSpec& h = config->vips[0].health;
  EXPECT_EQ(h.type, CheckType::none);
  EXPECT_EQ(h.eject_after_failures, 5u);
  EXPECT_EQ(h.ejection_ms, 1000u);
  EXPECT_EQ(h.max_ejection_ms, 30000u);
  EXPECT_EQ(h.panic_threshold, 50u);
  EXPECT_EQ(h.slow_start_ms, 0u);
  // A table without `type` means active TCP checks.
  auto with_table = parse_config(std::string(kVipHead) + "[vip.health]\n", "h.toml");
  ASSERT_TRUE(with_table) << with_table.error().message;
  EXPECT_EQ(with_table->vips[0].health.type, CheckType::tcp);
}

TEST(HealthConfig, BadValuesNameFileLineKeyAndExpectation) {
  const std::pair<const char*, const char*> cases[] = {
      {"[vip.health]\nrise=0\n", "h.toml:8:6: vip[w].health.rise: expected an integer in 1..100"},
      {"[vip.health]\ntype='http'\n",
       "h.toml:8:6: vip[w].health.type: expected one of tcp, none, got \"http\""},
      {"[vip.health]\ninterval_ms=100\ntimeout_ms=200\n",
       "h.toml:9:12: vip[w].health.timeout_ms: expected at most interval_ms (100), got 200"},
      {"[vip.health]\nejection_ms=5000\nmax_ejection_ms=1000\n",
       "vip[w].health.max_ejection_ms: expected at least ejection_ms (5000), got 1000"},
      {"[vip.health]\npanic_threshold=101\n",
       "vip[w].health.panic_threshold: expected an integer in 0..100, got 101"},
      {"[vip.health]\nintervall_ms=100\n", "h.toml:8:1: vip[w].health.intervall_ms: unknown key"},
      {"[vip.health]\ntype='none'\nexpect='x'\n", "send and expect need type = \"tcp\""},
      {"health = 5\n", "vip[w].health: expected a [vip.health] table"},
  };
  for (const auto& [tail, expected] : cases) {
    std::string text = kVipHead;
    if (std::string_view(tail).starts_with("health")) {
      text = "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n" + std::string(tail) +
             "[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'\n";
    } else {
      text += tail;
    }
    auto config = parse_config(text, "h.toml");
    ASSERT_FALSE(config) << tail;
    EXPECT_NE(config.error().message.find(expected), std::string::npos)
        << "got: " << config.error().message << "\nwant: " << expected;
  }
  std::string long_send = std::string(kVipHead) + "[vip.health]\nsend='" +
                          std::string(kMaxHealthPayload + 1, 'x') + "'\n";
  auto config = parse_config(long_send, "h.toml");
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message.find("vip[w].health.send: expected at most 1024 bytes"),
            std::string::npos)
      << config.error().message;
}

}  // namespace
}  // namespace ringlb
