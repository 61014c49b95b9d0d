#include "ringlb/policy/policy.h"

#include "policy/registry.h"

namespace ringlb {

const PolicyOps& policy_ops(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::round_robin:
      return kRoundRobinOps;
    case PolicyKind::weighted:
      return kWeightedOps;
    case PolicyKind::least_request:
      return kLeastRequestOps;
    case PolicyKind::random:
      return kRandomOps;
    case PolicyKind::ip_hash:
      return kIpHashOps;
  }
  return kRoundRobinOps;
}

std::shared_ptr<const PolicyPlan> PolicyPlan::make(std::shared_ptr<const Pool> pool,
                                                   PolicyKind kind) {
  std::shared_ptr<PolicyPlan> plan(new PolicyPlan());
  plan->pool_ = std::move(pool);
  plan->kind_ = kind;
  policy_ops(kind).prepare(*plan->pool_, plan->tables_);
  return plan;
}

}  // namespace ringlb
