// random: weighted random choice in O(1) through Vose's alias table, built once per
// snapshot. Backend i is returned with probability weight_i / sum(weights), weights
// being the effective ones (scaled by slow start, health.h). A retry draws again while
// the draw lands on a tried backend, a few times, then chooses among the untried
// backends by weight with one scan.
#include <vector>

#include "policy/registry.h"
#include "ringlb/random.h"

namespace ringlb {
namespace {

constexpr uint64_t kOne = 1ULL << 32;  // probability 1 in the threshold scale

void prepare_random(const Pool& pool, PolicyTables& tables) {
  const auto eligible = pool.eligible();
  const size_t n = eligible.size();
  if (n == 0) {
    return;
  }
  uint64_t total = 0;
  for (uint32_t index : eligible) {
    total += pool.backends()[index].effective_weight();
  }
  // scaled[i] = n * p_i in units of kOne; exact integer arithmetic keeps the table
  // identical on every build.
  std::vector<uint64_t> scaled(n);
  std::vector<uint32_t> small;
  std::vector<uint32_t> large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = static_cast<uint64_t>(
        static_cast<unsigned __int128>(pool.backends()[eligible[i]].effective_weight()) * n * kOne /
        total);
    (scaled[i] < kOne ? small : large).push_back(static_cast<uint32_t>(i));
  }
  tables.alias.assign(n, 0);
  tables.alias_threshold.assign(n, kOne);
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back();
    small.pop_back();
    const uint32_t l = large.back();
    tables.alias_threshold[s] = scaled[s];
    tables.alias[s] = eligible[l];
    scaled[l] -= kOne - scaled[s];
    if (scaled[l] < kOne) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left has probability 1 up to rounding: it keeps its own column.
  for (size_t i = 0; i < n; ++i) {
    if (tables.alias_threshold[i] == kOne) {
      tables.alias[i] = eligible[i];
    }
  }
}

constexpr int kRetryDraws = 8;

class Random final : public Policy {
 public:
  Random(std::shared_ptr<const PolicyPlan> plan, uint64_t seed)
      : Policy(std::move(plan)), rng_(seed) {}

  const Backend* pick(const Client&, const TriedBackends& tried) override {
    const auto eligible = pool().eligible();
    if (eligible.empty()) {
      return nullptr;
    }
    const PolicyTables& table = tables();
    const int draws = tried.empty() ? 1 : kRetryDraws;
    for (int draw = 0; draw < draws; ++draw) {
      const uint64_t r = rng_.next();
      // High half picks the column, low half decides between it and its alias.
      const uint32_t column =
          static_cast<uint32_t>(((r >> 32) * static_cast<uint64_t>(eligible.size())) >> 32);
      const bool own = (r & 0xffffffffULL) < table.alias_threshold[column];
      const uint32_t index = own ? eligible[column] : table.alias[column];
      if (!tried.contains(index)) {
        return &pool().backends()[index];
      }
    }
    return weighted_untried(tried);
  }

 private:
  const Backend* weighted_untried(const TriedBackends& tried) {
    uint64_t total = 0;
    for (uint32_t index : pool().eligible()) {
      total += tried.contains(index) ? 0 : pool().backends()[index].effective_weight();
    }
    if (total == 0) {
      return nullptr;
    }
    uint64_t point =
        static_cast<uint64_t>((static_cast<unsigned __int128>(rng_.next()) * total) >> 64);
    for (uint32_t index : pool().eligible()) {
      if (tried.contains(index)) {
        continue;
      }
      const uint64_t weight = pool().backends()[index].effective_weight();
      if (point < weight) {
        return &pool().backends()[index];
      }
      point -= weight;
    }
    return nullptr;  // not reached: the points cover the total
  }

  Rng rng_;
};

}  // namespace

const PolicyOps kRandomOps{
    .kind = PolicyKind::random,
    .prepare = prepare_random,
    .make = [](std::shared_ptr<const PolicyPlan> plan, uint64_t seed) -> std::unique_ptr<Policy> {
      return std::make_unique<Random>(std::move(plan), seed);
    },
};

}  // namespace ringlb
