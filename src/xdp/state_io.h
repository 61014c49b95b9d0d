// Reading what the maps hold before an apply (private to src/xdp).
#pragma once

#include "ringlb/result.h"
#include "ringlb/xdp/state.h"
#include "ringlb/xdp/state_plan.h"

namespace ringlb::xdp {

// The vips map, the backend ids by address, the member counts of vip_state and the
// generation of lb_state.
Result<MapContents> read_map_contents(const MapFds& maps);

}  // namespace ringlb::xdp
