// least_request: the backend with the fewest active connections relative to its
// weight, scored as (active + 1) / weight like HAProxy's leastconn; ties are broken at
// random. Small pools are scanned whole; above kFullScanLimit backends two random
// candidates are compared (power of two choices), which keeps pick() O(1) and avoids
// every worker herding onto the same least-loaded backend. A retry scans the untried
// backends whole: a backend that refused a moment ago has no active connections, so
// it always scores lowest, and only the tried set keeps a retry off it.
#include "policy/registry.h"
#include "ringlb/random.h"

namespace ringlb {
namespace {

constexpr size_t kFullScanLimit = 8;

// Returns <0 when a is less loaded than b, 0 on a tie, >0 otherwise.
int compare_load(const Backend& a, const Backend& b) {
  const uint64_t load_a =
      static_cast<uint64_t>(a.stats->active.load(std::memory_order_relaxed)) + 1;
  const uint64_t load_b =
      static_cast<uint64_t>(b.stats->active.load(std::memory_order_relaxed)) + 1;
  // (load_a / weight_a) vs (load_b / weight_b) without division.
  // Effective weights (slow start, health.h) are at most 10^7, so nothing overflows.
  const uint64_t lhs = load_a * b.effective_weight();
  const uint64_t rhs = load_b * a.effective_weight();
  return lhs < rhs ? -1 : (lhs > rhs ? 1 : 0);
}

class LeastRequest final : public Policy {
 public:
  LeastRequest(std::shared_ptr<const PolicyPlan> plan, uint64_t seed)
      : Policy(std::move(plan)), rng_(seed) {}

  const Backend* pick(const Client&, const TriedBackends& tried) override {
    const auto eligible = pool().eligible();
    const auto backends = pool().backends();
    const size_t n = eligible.size();
    if (n == 0) {
      return nullptr;
    }
    if (n <= kFullScanLimit || !tried.empty()) {
      return least_loaded_untried(tried);
    }
    const uint32_t first = rng_.below(static_cast<uint32_t>(n));
    uint32_t second = rng_.below(static_cast<uint32_t>(n - 1));
    second += second >= first ? 1 : 0;
    const Backend& a = backends[eligible[first]];
    const Backend& b = backends[eligible[second]];
    const int order = compare_load(a, b);
    if (order == 0) {
      return (rng_.next() & 1) ? &a : &b;
    }
    return order < 0 ? &a : &b;
  }

 private:
  // Every untried eligible backend is compared; ties are broken at random.
  const Backend* least_loaded_untried(const TriedBackends& tried) {
    const Backend* best = nullptr;
    uint32_t ties = 0;
    for (uint32_t index : pool().eligible()) {
      if (tried.contains(index)) {
        continue;
      }
      const Backend* candidate = &pool().backends()[index];
      const int order = best == nullptr ? -1 : compare_load(*candidate, *best);
      if (order < 0) {
        best = candidate;
        ties = 1;
      } else if (order == 0 && rng_.below(++ties) == 0) {
        best = candidate;  // reservoir sampling: each tied backend with equal chance
      }
    }
    return best;
  }

  Rng rng_;
};

}  // namespace

const PolicyOps kLeastRequestOps{
    .kind = PolicyKind::least_request,
    .prepare = prepare_nothing,
    .make = [](std::shared_ptr<const PolicyPlan> plan, uint64_t seed) -> std::unique_ptr<Policy> {
      return std::make_unique<LeastRequest>(std::move(plan), seed);
    },
};

}  // namespace ringlb
