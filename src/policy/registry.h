// The ops table each policy file exports; policy.cpp maps PolicyKind to them.
#pragma once

#include "ringlb/policy.h"

namespace ringlb {

extern const PolicyOps kRoundRobinOps;
extern const PolicyOps kWeightedOps;
extern const PolicyOps kLeastRequestOps;
extern const PolicyOps kRandomOps;
extern const PolicyOps kIpHashOps;

// For policies that precompute nothing.
inline void prepare_nothing(const Pool&, PolicyTables&) {}

}  // namespace ringlb
