// pick() per policy at 3, 100 and 1000 backends, and the Maglev table build.
// Targets (issue 2): every pick under 50 ns at 1000 backends, a 1000-backend table
// build under 10 ms. Results are recorded in perf/README.md.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ringlb/model/maglev.h"
#include "ringlb/policy/policy.h"
#include "ringlb/random.h"

namespace ringlb {
namespace {

std::shared_ptr<const PolicyPlan> make_pool(PolicyKind policy, int n) {
  std::vector<Backend> backends;
  Rng rng(99);
  for (int i = 0; i < n; ++i) {
    Backend b{.spec = {.name = "backend-" + std::to_string(i),
                       .address = {*IpAddress::parse("10.1.0.1"), static_cast<uint16_t>(1000 + i)},
                       .weight = 1 + rng.below(100)},
              .stats = std::make_shared<BackendStats>()};
    b.stats->active = rng.below(50);
    backends.push_back(std::move(b));
  }
  return PolicyPlan::make(Pool::build(std::move(backends), PoolOptions{.hash_key = {1, 2}}),
                          policy);
}

void BM_Pick(benchmark::State& state, PolicyKind kind) {
  auto pool = make_pool(kind, static_cast<int>(state.range(0)));
  auto policy = make_policy(pool, 1);
  // Distinct clients so ip_hash hashes a new address each time.
  std::vector<Client> clients(4096);
  Rng rng(5);
  for (auto& c : clients) {
    in_addr a;
    a.s_addr = static_cast<uint32_t>(rng.next());
    c.address = IpAddress::v4(a);
  }
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(policy->pick(clients[i++ & 4095], TriedBackends{}));
  }
}
BENCHMARK_CAPTURE(BM_Pick, round_robin, PolicyKind::round_robin)->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, weighted, PolicyKind::weighted)->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, least_request, PolicyKind::least_request)->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, random, PolicyKind::random)->Arg(3)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(BM_Pick, ip_hash, PolicyKind::ip_hash)->Arg(3)->Arg(100)->Arg(1000);

// The O(n) scan nginx's smooth weighted round-robin does on every pick, for comparison
// with the precomputed cycle above.
void BM_PickNginxScan(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::vector<int64_t> weight(n), current(n, 0);
  Rng rng(99);
  int64_t total = 0;
  for (auto& w : weight) {
    w = 1 + rng.below(100);
    total += w;
  }
  for (auto _ : state) {
    size_t best = 0;
    for (size_t i = 0; i < n; ++i) {
      current[i] += weight[i];
      if (current[i] > current[best]) {
        best = i;
      }
    }
    current[best] -= total;
    benchmark::DoNotOptimize(best);
  }
}
BENCHMARK(BM_PickNginxScan)->Arg(3)->Arg(100)->Arg(1000);

void BM_MaglevBuild(benchmark::State& state) {
  std::vector<std::string> names;
  std::vector<MaglevBackend> backends;
  Rng rng(3);
  for (int i = 0; i < state.range(0); ++i) {
    names.push_back("backend-" + std::to_string(i));
  }
  for (const auto& name : names) {
    backends.push_back({.name = name, .weight = state.range(1) ? 1 + rng.below(100) : 1});
  }
  std::vector<uint32_t> table;
  for (auto _ : state) {
    table = build_maglev_table(backends, kDefaultMaglevTableSize);
    benchmark::DoNotOptimize(table.data());
  }
  // Balance of the last table: the largest excess over a weighted share, in percentage
  // points of the table and relative to that share.
  std::vector<double> count(backends.size());
  double total_weight = 0;
  for (auto index : table) {
    count[index] += 1;
  }
  for (const auto& b : backends) {
    total_weight += b.weight;
  }
  double worst_points = 0;
  double worst_relative = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    const double share = count[i] / table.size();
    const double expected = backends[i].weight / total_weight;
    worst_points = std::max(worst_points, 100 * (share - expected));
    worst_relative = std::max(worst_relative, 100 * (share / expected - 1));
  }
  state.counters["max_excess_pp"] = worst_points;
  state.counters["max_excess_rel_pct"] = worst_relative;
  state.SetLabel(state.range(1) ? "weights 1..100" : "equal weights");
}
BENCHMARK(BM_MaglevBuild)
    ->Args({3, 0})
    ->Args({100, 0})
    ->Args({1000, 0})
    ->Args({1000, 1})
    ->Unit(benchmark::kMillisecond);

// A weighted pool's snapshot build (smooth sequence) at 1000 backends of mixed weights.
void BM_WeightedPoolBuild(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(make_pool(PolicyKind::weighted, static_cast<int>(state.range(0))));
  }
}
BENCHMARK(BM_WeightedPoolBuild)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ringlb

BENCHMARK_MAIN();
