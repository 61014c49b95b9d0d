// round_robin: every eligible backend in turn, weights ignored.
#include "policy/registry.h"

namespace ringlb {
namespace {

class RoundRobin final : public Policy {
 public:
  // Instances start at a position drawn from their seed: each worker and each snapshot
  // begins somewhere else, so frequent snapshots (health changes) favour no backend.
  RoundRobin(std::shared_ptr<const PolicyPlan> plan, uint64_t seed) : Policy(std::move(plan)) {
    const size_t n = this->pool().eligible().size();
    next_ = n == 0 ? 0 : static_cast<uint32_t>(seed % n);
  }

  const Backend* pick(const Client&, const TriedBackends& tried) override {
    const auto eligible = pool().eligible();
    const auto n = static_cast<uint32_t>(eligible.size());
    // Each tried backend is skipped once at most: one untried backend lies within
    // tried.size() + 1 steps when any is left.
    for (uint32_t step = 0; step < n; ++step) {
      const uint32_t index = eligible[next_];
      next_ = next_ + 1 == n ? 0 : next_ + 1;
      if (!tried.contains(index)) {
        return &pool().backends()[index];
      }
    }
    return nullptr;
  }

 private:
  uint32_t next_ = 0;
};

}  // namespace

const PolicyOps kRoundRobinOps{
    .kind = PolicyKind::round_robin,
    .prepare = prepare_nothing,
    .make = [](std::shared_ptr<const PolicyPlan> plan, uint64_t seed) -> std::unique_ptr<Policy> {
      return std::make_unique<RoundRobin>(std::move(plan), seed);
    },
};

}  // namespace ringlb
