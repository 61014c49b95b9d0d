// weighted: smooth weighted round-robin, the interleaving nginx uses (weights 5,1,1
// give a a b a c a a), exact over each cycle of sum(weights) picks. Weights are the
// effective ones (scaled by slow start, health.h).
//
// nginx runs the algorithm per pick, O(n). Here it runs once per snapshot to produce
// one cycle, and pick() walks the cycle: O(1). Weights are first divided by their
// greatest common divisor. A cycle is at most kMaxCycle picks and its build at most
// kMaxBuildSteps steps; weights whose cycle would exceed either are scaled down
// proportionally (each stays >= 1), so shares stay within 1/kMaxCycle-ish rounding of
// the configured ones.
#include <algorithm>
#include <numeric>

#include "policy/registry.h"

namespace ringlb {
namespace {

constexpr uint64_t kMaxCycle = 1u << 16;
constexpr uint64_t kMaxBuildSteps = 1u << 24;

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
  const uint64_t limit = std::max<uint64_t>(n, std::min(kMaxCycle, kMaxBuildSteps / n));
  if (total > limit) {
    const uint64_t original = total;
    total = 0;
    for (auto& w : weights) {
      w = std::max<uint64_t>(1, w * limit / original);
      total += w;
    }
  }

  // nginx's ngx_http_upstream_get_peer: add each weight to its current value, pick the
  // largest (the first one on ties), subtract the total from it.
  std::vector<int64_t> current(n, 0);
  tables.sequence.resize(total);
  for (uint64_t step = 0; step < total; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < n; ++i) {
      current[i] += static_cast<int64_t>(weights[i]);
      if (current[i] > current[best]) {
        best = i;
      }
    }
    current[best] -= static_cast<int64_t>(total);
    tables.sequence[step] = eligible[best];
  }
}

class Weighted final : public Policy {
 public:
  // A new snapshot (new weights, new members) starts a new cycle from its beginning,
  // as nginx does when its peers are reinitialized.
  const Backend* pick(const Pool& pool, const Client&) override {
    const auto& sequence = pool.tables().sequence;
    if (sequence.empty()) {
      return nullptr;
    }
    if (pool.id() != pool_id_ || next_ >= sequence.size()) {
      pool_id_ = pool.id();
      next_ = 0;
    }
    return &pool.backends()[sequence[next_++]];
  }

 private:
  uint64_t pool_id_ = 0;  // the snapshot the cursor belongs to
  uint64_t next_ = 0;
};

}  // namespace

const PolicyOps kWeightedOps{
    .kind = PolicyKind::weighted,
    .prepare = prepare_weighted,
    .make = [](uint64_t) -> std::unique_ptr<Policy> { return std::make_unique<Weighted>(); },
};

}  // namespace ringlb
