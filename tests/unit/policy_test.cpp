// Why this file is long: the five policies against one set of pool fixtures (eligibility,
// shares, the tried set of retries, seeds), first every policy by the same cases, then
// each policy's own rules; they share the fixtures, so they stay in one file.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "ringlb/policy/policy.h"
#include "ringlb/random.h"

namespace ringlb {
namespace {

struct B {
  std::string name;
  uint32_t weight = 1;
  AdminState state = AdminState::up;
  bool healthy = true;
};

std::shared_ptr<const PolicyPlan> make_pool(PolicyKind policy, const std::vector<B>& list) {
  std::vector<Backend> backends;
  uint16_t port = 9000;
  for (const auto& b : list) {
    backends.push_back(Backend{
        .spec = {.name = b.name,
                 .address = {*IpAddress::parse("127.0.0.1"), port++},
                 .weight = b.weight,
                 .state = b.state},
        .healthy = b.healthy,
        .stats = std::make_shared<BackendStats>(),
    });
  }
  return PolicyPlan::make(Pool::build(std::move(backends), PoolOptions{.hash_key = {11, 22}}),
                          policy);
}

std::vector<B> uniform(size_t n) {
  std::vector<B> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back({.name = "b" + std::to_string(i)});
  }
  return out;
}

Client client_at(uint32_t i) {
  in_addr a;
  a.s_addr = htonl(0x0a000000u + i);
  return Client{.address = IpAddress::v4(a), .port = 40000};
}

const Backend* first_pick(Policy& policy, const Client& client) {
  return policy.pick(client, TriedBackends{});
}

std::string sequence(Policy& policy, int picks) {
  std::string out;
  for (int i = 0; i < picks; ++i) {
    const Backend* b = first_pick(policy, client_at(i));
    out += b != nullptr ? b->spec.name : "-";
  }
  return out;
}

// -- every policy ---------------------------------------------------------------------

}  // namespace

void PrintTo(PolicyKind kind, std::ostream* out) {
  *out << to_string(kind);
}

namespace {

class EveryPolicy : public testing::TestWithParam<PolicyKind> {};

TEST_P(EveryPolicy, EmptyEligibleSetGivesNoBackend) {
  auto pool = make_pool(GetParam(), {{.name = "a", .state = AdminState::down},
                                     {.name = "b", .weight = 0},
                                     {.name = "c", .healthy = false},
                                     {.name = "d", .state = AdminState::drain}});
  auto policy = make_policy(pool, 1);
  for (uint32_t i = 0; i < 100; ++i) {
    EXPECT_EQ(first_pick(*policy, client_at(i)), nullptr);
  }
  auto empty = make_policy(make_pool(GetParam(), {}), 1);
  EXPECT_EQ(first_pick(*empty, client_at(0)), nullptr);
}

TEST_P(EveryPolicy, PicksOnlyUpHealthyWeightedBackends) {
  auto pool = make_pool(GetParam(), {{.name = "down", .state = AdminState::down},
                                     {.name = "ok1"},
                                     {.name = "zero", .weight = 0},
                                     {.name = "sick", .healthy = false},
                                     {.name = "ok2", .weight = 3},
                                     {.name = "drain", .state = AdminState::drain}});
  auto policy = make_policy(pool, 1);
  std::map<std::string, int> seen;
  for (uint32_t i = 0; i < 2000; ++i) {
    const Backend* b = first_pick(*policy, client_at(i));
    ASSERT_NE(b, nullptr);
    b->stats->active.fetch_add(1);  // the client holds its connection
    ++seen[b->spec.name];
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen["ok1"], 0);
  EXPECT_GT(seen["ok2"], 0);
}

// A connection's retries: each pick is an eligible backend not tried yet, until none is
// left. Weights are uneven so that weighted and random draw the heavy one again and
// again.
TEST_P(EveryPolicy, RetriesNeverReturnATriedBackend) {
  auto pool = make_pool(GetParam(), {{.name = "heavy", .weight = 10000},
                                     {.name = "a"},
                                     {.name = "down", .state = AdminState::down},
                                     {.name = "b", .weight = 3},
                                     {.name = "sick", .healthy = false},
                                     {.name = "c", .weight = 2}});
  for (uint32_t i = 0; i < 300; ++i) {
    auto policy = make_policy(pool, i);
    TriedBackends tried;
    std::set<std::string> names;
    for (int attempt = 0; attempt < 4; ++attempt) {
      const Backend* b = policy->pick(client_at(i), tried);
      ASSERT_NE(b, nullptr) << "client " << i << " attempt " << attempt;
      ASSERT_TRUE(b->eligible()) << b->spec.name;
      ASSERT_FALSE(tried.contains(pool->pool().index_of(*b))) << b->spec.name << " again";
      tried.add(pool->pool().index_of(*b));
      names.insert(b->spec.name);
    }
    EXPECT_EQ(names, (std::set<std::string>{"heavy", "a", "b", "c"}));
    EXPECT_EQ(policy->pick(client_at(i), tried), nullptr) << "every eligible backend was tried";
  }
}

// The last untried backend among many tried ones, whatever their weights: found in one
// pick (a retry may scan; it may not give up).
TEST_P(EveryPolicy, ARetryFindsTheOneBackendLeft) {
  std::vector<B> list;
  for (int i = 0; i < 17; ++i) {
    list.push_back({.name = "b" + std::to_string(i), .weight = i == 11 ? 1u : 10000u});
  }
  auto pool = make_pool(GetParam(), list);
  auto policy = make_policy(pool, 3);
  for (uint32_t client = 0; client < 50; ++client) {
    TriedBackends tried;
    for (uint32_t index = 0; index < 17; ++index) {
      if (index != 11) {
        tried.add(index);
      }
    }
    const Backend* b = policy->pick(client_at(client), tried);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->spec.name, "b11");
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, EveryPolicy,
                         testing::Values(PolicyKind::round_robin, PolicyKind::weighted,
                                         PolicyKind::least_request, PolicyKind::random,
                                         PolicyKind::ip_hash),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// -- round_robin ----------------------------------------------------------------------

TEST(RoundRobinPolicy, EveryEligibleBackendInTurn) {
  auto pool = make_pool(PolicyKind::round_robin,
                        {{.name = "a", .weight = 5}, {.name = "b"}, {.name = "c"}});
  auto policy = make_policy(pool, 0);
  EXPECT_EQ(sequence(*policy, 7), "abcabca");
}

TEST(RoundRobinPolicy, SkipsIneligibleBackends) {
  auto pool = make_pool(PolicyKind::round_robin,
                        {{.name = "a"}, {.name = "b", .state = AdminState::down}, {.name = "c"}});
  auto policy = make_policy(pool, 0);
  EXPECT_EQ(sequence(*policy, 4), "acac");
}

// Each instance (a worker's, for one snapshot) starts where its seed says: frequent
// snapshots do not send every worker's first pick to the first backend.
TEST(RoundRobinPolicy, TheSeedSetsTheStart) {
  auto pool = make_pool(PolicyKind::round_robin, {{.name = "a"}, {.name = "b"}, {.name = "c"}});
  EXPECT_EQ(sequence(*make_policy(pool, 1), 4), "bcab");
  EXPECT_EQ(sequence(*make_policy(pool, 5), 4), "cabc");
}

TEST(RoundRobinPolicy, ARetrySkipsTriedBackendsAndKeepsTheTurn) {
  auto pool = make_pool(PolicyKind::round_robin, {{.name = "a"}, {.name = "b"}, {.name = "c"}});
  auto policy = make_policy(pool, 0);
  TriedBackends tried;
  tried.add(1);  // b
  EXPECT_EQ(policy->pick(client_at(0), tried)->spec.name, "a");
  EXPECT_EQ(policy->pick(client_at(0), tried)->spec.name, "c");  // b skipped
  EXPECT_EQ(sequence(*policy, 3), "abc");
}

// -- weighted -------------------------------------------------------------------------

TEST(WeightedPolicy, SmoothSequenceForWeights511) {
  auto pool =
      make_pool(PolicyKind::weighted, {{.name = "a", .weight = 5}, {.name = "b"}, {.name = "c"}});
  auto policy = make_policy(pool, 0);
  EXPECT_EQ(sequence(*policy, 14), "aabacaaaabacaa");
}

TEST(WeightedPolicy, SmoothSequenceForWeights421) {
  auto pool = make_pool(PolicyKind::weighted,
                        {{.name = "a", .weight = 4}, {.name = "b", .weight = 2}, {.name = "c"}});
  auto policy = make_policy(pool, 0);
  // nginx's ngx_http_upstream_get_peer gives a b a c a b a for 4,2,1.
  EXPECT_EQ(sequence(*policy, 7), "abacaba");
}

TEST(WeightedPolicy, ExactOverEachCycle) {
  std::vector<B> list = {{.name = "a", .weight = 7},
                         {.name = "b", .weight = 3},
                         {.name = "c", .weight = 11},
                         {.name = "d", .weight = 1}};
  auto pool = make_pool(PolicyKind::weighted, list);
  auto policy = make_policy(pool, 9);  // any start: every cycle-long window is exact
  for (int cycle = 0; cycle < 3; ++cycle) {
    std::map<std::string, uint32_t> counts;
    for (int i = 0; i < 22; ++i) {
      ++counts[first_pick(*policy, client_at(i))->spec.name];
    }
    for (const auto& b : list) {
      EXPECT_EQ(counts[b.name], b.weight) << "cycle " << cycle << " backend " << b.name;
    }
  }
}

// nginx's ngx_http_upstream_get_peer, O(n) per pick: the reference the precomputed
// cycle must equal pick for pick.
std::string nginx_sequence(const std::vector<B>& list, int picks) {
  std::vector<int64_t> current(list.size(), 0);
  int64_t total = 0;
  for (const auto& b : list) {
    total += b.weight;
  }
  std::string out;
  for (int step = 0; step < picks; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      current[i] += list[i].weight;
      if (current[i] > current[best]) {
        best = i;
      }
    }
    current[best] -= total;
    out += list[best].name;
  }
  return out;
}

TEST(WeightedPolicy, CycleEqualsNginxPickForPickOnRandomPools) {
  Rng rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<B> list;
    const size_t n = 1 + rng.below(12);
    uint64_t divisor = 0;
    int total = 0;
    for (size_t i = 0; i < n; ++i) {
      // Few distinct weights, so classes hold several backends; names one letter each.
      const auto weight = static_cast<uint32_t>(1 + rng.below(round % 2 == 0 ? 3 : 9));
      list.push_back({.name = std::string(1, static_cast<char>('a' + i)), .weight = weight});
      divisor = std::gcd(divisor, uint64_t{weight});
      total += static_cast<int>(weight);
    }
    // The pool divides the weights by their gcd; so does the reference.
    std::vector<B> reduced = list;
    for (auto& b : reduced) {
      b.weight /= static_cast<uint32_t>(divisor);
    }
    auto pool = make_pool(PolicyKind::weighted, list);
    auto policy = make_policy(pool, 0);
    const int picks = 2 * total;
    ASSERT_EQ(sequence(*policy, picks), nginx_sequence(reduced, picks)) << "round " << round;
  }
}

TEST(WeightedPolicy, CommonDivisorDoesNotLengthenTheCycle) {
  auto pool = make_pool(
      PolicyKind::weighted,
      {{.name = "a", .weight = 500}, {.name = "b", .weight = 100}, {.name = "c", .weight = 100}});
  EXPECT_EQ(pool->tables().sequence.size(), 7u);
}

TEST(WeightedPolicy, TheSeedSetsWhereTheCycleIsEntered) {
  auto pool = make_pool(
      PolicyKind::weighted,
      {{.name = "a", .weight = 1}, {.name = "b", .weight = 1}, {.name = "c", .weight = 2}});
  EXPECT_EQ(sequence(*make_policy(pool, 0), 8), "cabccabc");
  EXPECT_EQ(sequence(*make_policy(pool, 2), 8), "bccabcca");
}

// A retry walks on past tried entries; when the tried backend owns nearly the whole
// cycle, it does not walk the cycle but takes the heaviest untried backend.
TEST(WeightedPolicy, ARetryWalksPastTriedEntries) {
  auto pool =
      make_pool(PolicyKind::weighted, {{.name = "a", .weight = 5}, {.name = "b"}, {.name = "c"}});
  auto policy = make_policy(pool, 0);  // a a b a c a a
  TriedBackends tried;
  tried.add(0);
  EXPECT_EQ(policy->pick(client_at(0), tried)->spec.name, "b");
  EXPECT_EQ(policy->pick(client_at(0), tried)->spec.name, "c");
  auto skewed =
      make_pool(PolicyKind::weighted,
                {{.name = "a", .weight = 10000}, {.name = "b"}, {.name = "c", .weight = 2}});
  EXPECT_EQ(make_policy(skewed, 0)->pick(client_at(0), tried)->spec.name, "c");
}

TEST(WeightedPolicy, HugeWeightSumsAreScaledAndStayProportional) {
  std::vector<B> list;
  for (int i = 0; i < 1000; ++i) {
    list.push_back({.name = "b" + std::to_string(i), .weight = static_cast<uint32_t>(1 + i * 7)});
  }
  auto pool = make_pool(PolicyKind::weighted, list);
  const auto& seq = pool->tables().sequence;
  EXPECT_LE(seq.size(), 65536u);
  std::vector<uint32_t> counts(list.size());
  for (auto index : seq) {
    ++counts[index];
  }
  double total = 0;
  for (const auto& b : list) {
    total += b.weight;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    EXPECT_GE(counts[i], 1u);
    EXPECT_NEAR(counts[i] / static_cast<double>(seq.size()), list[i].weight / total, 0.0005);
  }
}

// -- random ---------------------------------------------------------------------------

TEST(RandomPolicy, SharesFollowWeightsWithFixedSeed) {
  std::vector<B> list = {{.name = "a", .weight = 1},
                         {.name = "b", .weight = 2},
                         {.name = "c", .weight = 3},
                         {.name = "d", .weight = 4}};
  auto pool = make_pool(PolicyKind::random, list);
  auto policy = make_policy(pool, 42);
  constexpr int kPicks = 200000;
  std::map<std::string, int> counts;
  for (int i = 0; i < kPicks; ++i) {
    ++counts[first_pick(*policy, client_at(i))->spec.name];
  }
  // Standard deviation of a share here is below 0.0011; allow about 5 sigma.
  for (const auto& b : list) {
    EXPECT_NEAR(counts[b.name] / static_cast<double>(kPicks), b.weight / 10.0, 0.006) << b.name;
  }
}

TEST(RandomPolicy, DifferentSeedsGiveDifferentSequences) {
  auto pool = make_pool(PolicyKind::random, uniform(10));
  auto one = make_policy(pool, 1);
  auto two = make_policy(pool, 2);
  EXPECT_NE(sequence(*one, 30), sequence(*two, 30));
}

// A retry chooses among the untried backends by their weights.
TEST(RandomPolicy, RetrySharesFollowTheUntriedWeights) {
  auto pool = make_pool(
      PolicyKind::random,
      {{.name = "a", .weight = 100}, {.name = "b", .weight = 1}, {.name = "c", .weight = 3}});
  auto policy = make_policy(pool, 8);
  TriedBackends tried;
  tried.add(0);
  std::map<std::string, int> counts;
  for (int i = 0; i < 40000; ++i) {
    ++counts[policy->pick(client_at(i), tried)->spec.name];
  }
  EXPECT_EQ(counts["a"], 0);
  EXPECT_NEAR(counts["c"] / 40000.0, 0.75, 0.02);
}

// -- least_request --------------------------------------------------------------------

// Clients that hold their connection: the policy must keep active counts proportional
// to weights.
void expect_active_follows_weights(size_t n, int picks) {
  std::vector<B> list;
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    list.push_back({.name = "b" + std::to_string(i), .weight = static_cast<uint32_t>(1 + i % 4)});
    total += list.back().weight;
  }
  auto pool = make_pool(PolicyKind::least_request, list);
  auto policy = make_policy(pool, 7);
  for (int i = 0; i < picks; ++i) {
    first_pick(*policy, client_at(i))->stats->active.fetch_add(1);
  }
  for (const auto& backend : pool->pool().backends()) {
    const double expected = picks * backend.spec.weight / total;
    const double active = static_cast<double>(backend.stats->active.load());
    // Full scan (small pools) keeps (active + 1) / weight level, so every backend stays
    // within about two connections of its share;
    // power of two choices within a few connections plus 10%.
    const double slack = n <= 8 ? 2.5 : 3 + 0.1 * expected;
    EXPECT_NEAR(active, expected, slack) << n << " backends, " << backend.spec.name;
  }
}

TEST(LeastRequestPolicy, FullScanKeepsActiveProportionalToWeight) {
  expect_active_follows_weights(6, 6000);
}

TEST(LeastRequestPolicy, TwoChoicesKeepActiveProportionalToWeightInLargePools) {
  expect_active_follows_weights(100, 50000);
}

TEST(LeastRequestPolicy, PrefersTheLeastLoadedBackend) {
  auto pool = make_pool(PolicyKind::least_request, uniform(3));
  pool->pool().backends()[0].stats->active = 10;
  pool->pool().backends()[1].stats->active = 2;
  pool->pool().backends()[2].stats->active = 10;
  auto policy = make_policy(pool, 3);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(first_pick(*policy, client_at(i))->spec.name, "b1");
  }
}

// A backend that refuses at once never holds a connection, so it always looks least
// loaded: the retry must skip it all the same (it used to re-pick it until the retries
// ran out, in pools of any size).
TEST(LeastRequestPolicy, ARetrySkipsTheIdleLookingBackendItTried) {
  for (size_t n : {2u, 5u, 40u}) {
    auto pool = make_pool(PolicyKind::least_request, uniform(n));
    for (size_t i = 1; i < n; ++i) {
      pool->pool().backends()[i].stats->active = 10;
    }
    auto policy = make_policy(pool, 4);
    TriedBackends tried;
    tried.add(0);  // b0, idle because it refuses
    for (int i = 0; i < 50; ++i) {
      const Backend* b = policy->pick(client_at(i), tried);
      ASSERT_NE(b, nullptr);
      EXPECT_NE(b->spec.name, "b0") << n << " backends";
    }
  }
}

TEST(LeastRequestPolicy, BreaksTiesAtRandom) {
  auto pool = make_pool(PolicyKind::least_request, uniform(4));
  auto policy = make_policy(pool, 5);
  std::map<std::string, int> counts;
  for (int i = 0; i < 8000; ++i) {
    ++counts[first_pick(*policy, client_at(i))->spec.name];  // nobody's count changes
  }
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& [name, count] : counts) {
    EXPECT_NEAR(count, 2000, 250) << name;
  }
}

// -- ip_hash --------------------------------------------------------------------------

TEST(IpHashPolicy, SameClientSameBackend) {
  auto pool = make_pool(PolicyKind::ip_hash, uniform(5));
  auto one = make_policy(pool, 1);
  auto two = make_policy(pool, 2);  // another worker
  for (uint32_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(first_pick(*one, client_at(i)), first_pick(*two, client_at(i)));
  }
}

TEST(IpHashPolicy, SharesFollowWeights) {
  std::vector<B> list = {{.name = "a", .weight = 1}, {.name = "b", .weight = 3}};
  auto pool = make_pool(PolicyKind::ip_hash, list);
  auto policy = make_policy(pool, 1);
  std::map<std::string, int> counts;
  constexpr int kClients = 100000;
  for (uint32_t i = 0; i < kClients; ++i) {
    ++counts[first_pick(*policy, client_at(i * 7919))->spec.name];
  }
  EXPECT_NEAR(counts["a"] / static_cast<double>(kClients), 0.25, 0.01);
}

// A retry walks the client's preference order: the same on every worker (and every
// host with the same table), and spread over the other backends by their share.
TEST(IpHashPolicy, RetriesWalkTheClientsPreferenceOrder) {
  auto pool = make_pool(PolicyKind::ip_hash, uniform(4));
  auto one = make_policy(pool, 1);
  auto two = make_policy(pool, 2);
  std::map<std::string, int> seconds;
  for (uint32_t i = 0; i < 4000; ++i) {
    const Client c = client_at(i);
    TriedBackends tried;
    tried.add(pool->pool().index_of(*first_pick(*one, c)));
    const Backend* second = one->pick(c, tried);
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(second, two->pick(c, tried));
    ++seconds[second->spec.name];
  }
  ASSERT_EQ(seconds.size(), 4u);
  for (const auto& [name, count] : seconds) {
    EXPECT_NEAR(count, 1000, 150) << "second choice " << name;
  }
}

TEST(IpHashPolicy, RemovingABackendMovesOnlyItsClients) {
  auto before = make_policy(make_pool(PolicyKind::ip_hash, uniform(5)), 1);
  auto list = uniform(5);
  list[2].state = AdminState::down;
  auto after = make_policy(make_pool(PolicyKind::ip_hash, list), 1);
  for (uint32_t i = 0; i < 5000; ++i) {
    const auto& was = first_pick(*before, client_at(i))->spec.name;
    const auto& now = first_pick(*after, client_at(i))->spec.name;
    if (was != "b2") {
      EXPECT_EQ(now, was);
    }
  }
}

}  // namespace
}  // namespace ringlb
