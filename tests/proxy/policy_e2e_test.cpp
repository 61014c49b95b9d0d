// Every policy observed end to end: where real connections land through ringlbd.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>

#include "harness.h"
#include "ringlb/config/config.h"
#include "ringlb/policy/policy.h"

namespace ringlb::test {
namespace {

// The backend name a connection landed on: the backend sends "<name>\n" first.
std::string landed(Conn& conn) {
  if (!conn.ok()) {
    return "<failed>";
  }
  auto name = conn.read_exact(2);
  return name ? name->substr(0, 1) : "<failed>";
}

struct Case {
  const char* policy;
  std::vector<double> expected;  // shares of a, b, c with weights 5, 3, 2
  double tolerance;
};

class PolicyEndToEnd : public testing::TestWithParam<Case> {};

// 300 clients connect and stay connected (so least_request sees the load), one worker
// (so sequence policies show their exact sequence).
TEST_P(PolicyEndToEnd, SharesFollowThePolicy) {
  raise_fd_limit();
  const Case& c = GetParam();
  Backend a("a", BackendMode::name), b("b", BackendMode::name), cc("c", BackendMode::name);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a, &b, &cc}, std::string("policy = \"") + c.policy + "\"\n",
                          "workers = 1\n", {5, 3, 2}));
  constexpr int kClients = 300;
  std::vector<Conn> held;
  std::map<std::string, int> counts;
  for (int i = 0; i < kClients; ++i) {
    held.push_back(Conn::open("127.0.0.1", port));
    ++counts[landed(held.back())];
  }
  EXPECT_EQ(counts["<failed>"], 0);
  const char* names[] = {"a", "b", "c"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(counts[names[i]] / static_cast<double>(kClients), c.expected[i], c.tolerance)
        << c.policy << " backend " << names[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, PolicyEndToEnd,
                         testing::Values(Case{"round_robin", {1 / 3.0, 1 / 3.0, 1 / 3.0}, 0.01},
                                         Case{"weighted", {0.5, 0.3, 0.2}, 0.01},
                                         Case{"least_request", {0.5, 0.3, 0.2}, 0.01},
                                         // 300 draws: a share's standard deviation is below 0.03.
                                         Case{"random", {0.5, 0.3, 0.2}, 0.09}),
                         [](const auto& info) { return std::string(info.param.policy); });

// ip_hash: clients from 200 loopback addresses. Each address always lands on the same
// backend, and that backend is the one the shared Maglev table names for it.
TEST(IpHashEndToEnd, EachClientAddressLandsWhereTheTableSays) {
  Backend a("a", BackendMode::name), b("b", BackendMode::name), c("c", BackendMode::name);
  const uint16_t port = free_port();
  const std::string config_text =
      proxy_config(port, {&a, &b, &c}, "policy = \"ip_hash\"\n",
                   "workers = 2\nhash_seed = \"00112233445566778899aabbccddeeff\"\n");
  Ringlbd lb(config_text);

  // The same pool the daemon builds, to predict each client's backend.
  auto config = parse_config(config_text, "test");
  ASSERT_TRUE(config) << config.error().message;
  auto predictor = make_policy(
      PolicyPlan::make(Pool::of_spec(config->vips[0], pool_options(*config)), PolicyKind::ip_hash),
      0);

  std::map<std::string, int> counts;
  for (int host = 2; host < 202; ++host) {
    const std::string source =
        "127.0." + std::to_string(host / 250) + "." + std::to_string(host % 250 + 1);
    in_addr addr;
    inet_pton(AF_INET, source.c_str(), &addr);
    const std::string expected =
        predictor->pick(Client{.address = IpAddress::v4(addr)}, TriedBackends{})->spec.name;
    for (int repeat = 0; repeat < 2; ++repeat) {
      Conn conn = Conn::open("127.0.0.1", port, 3000, source);
      const std::string got = landed(conn);
      ASSERT_EQ(got, expected) << "client " << source << " repeat " << repeat;
      ++counts[got];
    }
  }
  // 400 connections over three equal backends: every backend gets some.
  EXPECT_EQ(counts.size(), 3u);
  for (const auto& [name, count] : counts) {
    EXPECT_GT(count, 60) << name;
  }
}

}  // namespace
}  // namespace ringlb::test
