// weighted: smooth weighted round-robin, the interleaving nginx uses (weights 5,1,1
// give a a b a c a a), exact over each cycle of sum(weights) picks. Weights are the
// effective ones (scaled by slow start, health.h).
//
// nginx runs the algorithm per pick, O(n). Here it runs once per snapshot to produce
// one cycle, and pick() walks the cycle: O(1). Weights are first divided by their
// greatest common divisor.
//
// The build gives the same sequence as nginx's per-pick scan, but scans weight classes
// instead of backends, so a cycle costs O(cycle x distinct weights), not
// O(cycle x backends). After t steps a backend's current value is t*w - T*k (w its
// weight, T the total, k its picks so far), so among backends of equal weight the one
// with the fewest picks (then the lowest index) leads its class, and the members of a
// class are picked in index order, round and round. Each step compares one candidate
// per class.
//
// A cycle is at most kMaxCycle picks and its build at most kMaxBuildSteps candidate
// comparisons (a few ms); weights whose cycle would exceed either are scaled down
// proportionally (each stays >= 1), so shares stay within 1/kMaxCycle-ish rounding of
// the configured ones. Control writes must reach the workers within 10 ms.
#include <algorithm>
#include <map>
#include <numeric>

#include "policy/registry.h"

namespace ringlb {
namespace {

constexpr uint64_t kMaxCycle = 1u << 16;
constexpr uint64_t kMaxBuildSteps = 1u << 22;

// Backends of one weight, in index order. The leader is members[next]; `current` is its
// nginx current value, t*weight - T*rounds after t steps, where rounds counts the class's
// full turns (every member of a turn has been picked once more).
struct WeightClass {
  int64_t weight = 0;
  int64_t current = 0;
  std::vector<uint32_t> members;  // indexes into the eligible list
  size_t next = 0;
};

std::vector<WeightClass> weight_classes(const std::vector<uint64_t>& weights) {
  std::map<uint64_t, WeightClass> by_weight;
  for (size_t i = 0; i < weights.size(); ++i) {
    WeightClass& c = by_weight[weights[i]];
    c.weight = static_cast<int64_t>(weights[i]);
    c.members.push_back(static_cast<uint32_t>(i));
  }
  std::vector<WeightClass> out;
  out.reserve(by_weight.size());
  for (auto& [weight, c] : by_weight) {
    out.push_back(std::move(c));
  }
  return out;
}

size_t distinct_count(std::vector<uint64_t> weights) {
  std::sort(weights.begin(), weights.end());
  return static_cast<size_t>(std::unique(weights.begin(), weights.end()) - weights.begin());
}

void prepare_weighted(const Pool& pool, PolicyTables& tables) {
  const auto eligible = pool.eligible();
  const size_t n = eligible.size();
  if (n == 0) {
    return;
  }
  std::vector<uint64_t> weights(n);
  uint64_t divisor = 0;
  for (size_t i = 0; i < n; ++i) {
    weights[i] = pool.backends()[eligible[i]].effective_weight();
    divisor = std::gcd(divisor, weights[i]);
  }
  uint64_t total = 0;
  for (auto& w : weights) {
    w /= divisor;
    total += w;
  }
  // Scaling never adds distinct weights, so the count before bounds the build after.
  const uint64_t classes = distinct_count(weights);
  const uint64_t limit = std::max<uint64_t>(n, std::min(kMaxCycle, kMaxBuildSteps / classes));
  if (total > limit) {
    const uint64_t original = total;
    total = 0;
    for (auto& w : weights) {
      w = std::max<uint64_t>(1, w * limit / original);
      total += w;
    }
  }

  // nginx's ngx_http_upstream_get_peer adds each weight to its backend's current value,
  // picks the largest (the first one on ties) and subtracts the total from it. The
  // class leaders are the only backends that can be largest.
  std::vector<WeightClass> by_weight = weight_classes(weights);
  const auto t_total = static_cast<int64_t>(total);
  tables.sequence.resize(total);
  for (uint64_t step = 0; step < total; ++step) {
    WeightClass* best = nullptr;
    for (WeightClass& c : by_weight) {
      c.current += c.weight;
      if (best == nullptr || c.current > best->current ||
          (c.current == best->current && c.members[c.next] < best->members[best->next])) {
        best = &c;
      }
    }
    tables.sequence[step] = eligible[best->members[best->next]];
    if (++best->next == best->members.size()) {
      best->next = 0;
      best->current -= t_total;
    }
  }
}

// Entries of the cycle a retry walks before it falls back to a scan: past a tried
// backend the next entries usually name another one, and a weight-heavy tried backend
// (most of the cycle) must not cost a walk over the whole cycle.
constexpr uint32_t kRetryWalk = 32;

// The untried eligible backend with the largest effective weight (the first on ties):
// the smooth sequence's own preference once the walk found none. O(eligible).
const Backend* heaviest_untried(const Pool& pool, const TriedBackends& tried) {
  const Backend* best = nullptr;
  for (uint32_t index : pool.eligible()) {
    const Backend& b = pool.backends()[index];
    if (!tried.contains(index) &&
        (best == nullptr || b.effective_weight() > best->effective_weight())) {
      best = &b;
    }
  }
  return best;
}

class Weighted final : public Policy {
 public:
  // A new snapshot (new weights, new members) starts a new cycle, as nginx does when its
  // peers are reinitialized; each instance (worker, snapshot) enters it at a position
  // drawn from its seed, so frequent snapshots do not favour the heaviest backend.
  Weighted(std::shared_ptr<const PolicyPlan> plan, uint64_t seed) : Policy(std::move(plan)) {
    const size_t n = this->tables().sequence.size();
    next_ = n == 0 ? 0 : seed % n;
  }

  const Backend* pick(const Client&, const TriedBackends& tried) override {
    const auto& sequence = tables().sequence;
    if (sequence.empty()) {
      return nullptr;
    }
    const uint64_t walk = tried.empty() ? 1 : std::min<uint64_t>(kRetryWalk, sequence.size());
    for (uint64_t step = 0; step < walk; ++step) {
      const uint32_t index = sequence[next_];
      next_ = next_ + 1 == sequence.size() ? 0 : next_ + 1;
      if (!tried.contains(index)) {
        return &pool().backends()[index];
      }
    }
    return heaviest_untried(pool(), tried);
  }

 private:
  uint64_t next_ = 0;
};

}  // namespace

const PolicyOps kWeightedOps{
    .kind = PolicyKind::weighted,
    .prepare = prepare_weighted,
    .make = [](std::shared_ptr<const PolicyPlan> plan, uint64_t seed) -> std::unique_ptr<Policy> {
      return std::make_unique<Weighted>(std::move(plan), seed);
    },
};

}  // namespace ringlb
