// The data plane's maps as its skeleton declares them (private to src/xdp): one table
// that pairs each MapFds field with its map, and the names the skeleton gives its maps.
// Nothing here lists a map by a name of its own.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ringlb/result.h"
#include "ringlb/xdp/state.h"
#include "ringlb_xdp.skel.h"

namespace ringlb::xdp {

// The fds of a loaded skeleton's state maps.
MapFds state_map_fds(const ringlb_xdp& skel);

// What the skeleton declares, read once from an opened (never loaded) copy.
struct SkeletonMapNames {
  std::vector<std::string> pinned;  // the maps pinned by name (LIBBPF_PIN_BY_NAME)
  // Each MapFds field with its map's name, `vips` first.
  std::vector<std::pair<int MapFds::*, std::string>> state;
};
Result<const SkeletonMapNames*> skeleton_map_names();

}  // namespace ringlb::xdp
