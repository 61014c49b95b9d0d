// round_robin: every eligible backend in turn, weights ignored.
#include "policy/registry.h"

namespace ringlb {
namespace {

class RoundRobin final : public Policy {
 public:
  const Backend* pick(const Pool& pool, const Client&) override {
    const auto eligible = pool.eligible();
    if (eligible.empty()) {
      return nullptr;
    }
    // A smaller new snapshot may leave the cursor past its end.
    if (next_ >= eligible.size()) {
      next_ = 0;
    }
    return &pool.backends()[eligible[next_++]];
  }

 private:
  uint32_t next_ = 0;
};

}  // namespace

const PolicyOps kRoundRobinOps{
    .kind = PolicyKind::round_robin,
    .prepare = prepare_nothing,
    .make = [](uint64_t) -> std::unique_ptr<Policy> { return std::make_unique<RoundRobin>(); },
};

}  // namespace ringlb
