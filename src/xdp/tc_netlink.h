// Raw rtnetlink for what libbpf's tc API does not offer (private to src/xdp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ringlb/result.h"

namespace ringlb::xdp {

// How many filters the clsact qdisc of `ifindex` holds at `parent` (ingress or egress:
// TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)), from an RTM_GETTFILTER dump.
Result<size_t> count_tc_filters(int ifindex, uint32_t parent);

}  // namespace ringlb::xdp
