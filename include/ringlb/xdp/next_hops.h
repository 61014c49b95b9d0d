// Next-hop priming: the XDP program finds each backend's next hop with bpf_fib_lookup,
// which needs a neighbour entry the kernel only makes when something is sent there.
#pragma once

#include <vector>

#include "ringlb/config/config.h"

namespace ringlb::xdp {

// Sends an empty datagram (to the discard port) to each forward-mode backend that is
// not down, so that the kernel resolves the next hop's MAC. Failures only delay the
// first packets. apply_state() does this; a daemon repeats it now and then.
void resolve_next_hops(const Config& config);
void resolve_next_hops(const std::vector<VipSpec>& vips);

}  // namespace ringlb::xdp
