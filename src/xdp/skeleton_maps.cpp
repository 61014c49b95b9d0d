// The data plane's maps as its skeleton declares them (skeleton_maps.h).
#include "skeleton_maps.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>

#include "libbpf_log.h"
#include "ringlb/xdp/program.h"

namespace ringlb::xdp {
namespace {

using SkeletonMaps = decltype(ringlb_xdp::maps);

// The maps apply_state() reads and writes: each MapFds field and the skeleton's map.
// `vips` first: PinnedMaps::open tells "no program pinned here" by its absence.
struct StateMap {
  int MapFds::*fd;
  bpf_map* SkeletonMaps::*map;
};
constexpr StateMap kStateMaps[] = {
    {&MapFds::vips, &SkeletonMaps::vips},
    {&MapFds::frag_vips, &SkeletonMaps::frag_vips},
    {&MapFds::flows, &SkeletonMaps::flows},
    {&MapFds::vip_index, &SkeletonMaps::vip_index},
    {&MapFds::vip_epochs, &SkeletonMaps::vip_epochs},
    {&MapFds::vip_filter, &SkeletonMaps::vip_filter},
    {&MapFds::backends, &SkeletonMaps::backends},
    {&MapFds::maglev_tables, &SkeletonMaps::maglev_tables},
    {&MapFds::cpu_map, &SkeletonMaps::cpu_map},
    {&MapFds::lb_state, &SkeletonMaps::lb_state},
    {&MapFds::vip_state, &SkeletonMaps::vip_state},
    {&MapFds::backend_state, &SkeletonMaps::backend_state},
};

Result<SkeletonMapNames> read_names() {
  std::unique_ptr<ringlb_xdp, SkeletonDeleter> skel(ringlb_xdp__open());
  if (!skel) {
    return libbpf_error("Failed to open the XDP program", errno);
  }
  SkeletonMapNames names;
  bpf_map* map;
  bpf_object__for_each_map(map, skel->obj) {
    // libbpf gives a pin path at open exactly to the maps pinned by name.
    if (bpf_map__pin_path(map) != nullptr) {
      names.pinned.emplace_back(bpf_map__name(map));
    }
  }
  for (const StateMap& m : kStateMaps) {
    names.state.emplace_back(m.fd, bpf_map__name(skel->maps.*m.map));
  }
  return names;
}

}  // namespace

MapFds state_map_fds(const ringlb_xdp& skel) {
  MapFds fds;
  for (const StateMap& m : kStateMaps) {
    fds.*m.fd = bpf_map__fd(skel.maps.*m.map);
  }
  return fds;
}

Result<const SkeletonMapNames*> skeleton_map_names() {
  static std::mutex mutex;
  static std::optional<SkeletonMapNames> names;  // guarded by mutex; kept once read
  std::lock_guard lock(mutex);
  if (!names) {
    auto read = read_names();
    if (!read) {
      return read.error();
    }
    names = std::move(*read);
  }
  return &*names;
}

}  // namespace ringlb::xdp
