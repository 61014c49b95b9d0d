// The ops table each policy file exports; policy.cpp maps PolicyKind to them.
#pragma once

#include "ringlb/policy/policy.h"

namespace ringlb {

extern const PolicyOps kRoundRobinOps;
extern const PolicyOps kWeightedOps;
extern const PolicyOps kLeastRequestOps;
extern const PolicyOps kRandomOps;
extern const PolicyOps kIpHashOps;

// For policies that precompute nothing.
inline void prepare_nothing(const Pool&, PolicyTables&) {}

// Whether every eligible backend of `pool` is in `tried`: a retry has nothing left to
// pick. O(tried).
inline bool all_eligible_tried(const Pool& pool, const TriedBackends& tried) {
  // `tried` holds distinct indexes, some perhaps of backends that are not eligible.
  size_t eligible_tried = 0;
  for (uint32_t index : tried) {
    eligible_tried += pool.backends()[index].eligible() ? 1 : 0;
  }
  return eligible_tried == pool.eligible().size();
}

}  // namespace ringlb
