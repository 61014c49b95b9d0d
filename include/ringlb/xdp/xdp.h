// ringlb's XDP library: loading, attaching and filling the XDP programs' maps. This
// header includes the library's headers, each of one job:
//
//   program.h        load options, XdpProgram (the data plane): load, apply, attach
//   reuseport.h      ReuseportProgram: steer mode's sk_reuseport program
//   decap.h          DecapProgram (backends), on the XDP hook or clsact ingress
//   attach.h         what is attached to an interface's XDP hook; detach
//   pins.h           the pinned maps: their names (from the skeleton), unpin, listing
//   state.h          maps are the state: XdpState, PinnedMaps, StateLock, apply_state
//   state_plan.h     apply_state's pure plan: ids, epochs, records, tables
//   forward_table.h  a forward VIP's Maglev table (build_forward_table)
//   pinned_forward.h forward VIPs as the pinned maps hold them, for the tools
//   counters.h       per-CPU counters and verdict names
//   next_hops.h      next-hop priming for bpf_fib_lookup
#pragma once

#include "ringlb/xdp/attach.h"
#include "ringlb/xdp/counters.h"
#include "ringlb/xdp/decap.h"
#include "ringlb/xdp/forward_table.h"
#include "ringlb/xdp/next_hops.h"
#include "ringlb/xdp/pinned_forward.h"
#include "ringlb/xdp/pins.h"
#include "ringlb/xdp/program.h"
#include "ringlb/xdp/reuseport.h"
#include "ringlb/xdp/state.h"
#include "ringlb/xdp/state_plan.h"
