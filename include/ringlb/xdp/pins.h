// The data plane's pins under a pin root: which maps are pinned (the skeleton's own
// list: the maps bpf/maps.h declares with LIBBPF_PIN_BY_NAME), removing them, and what a
// pin directory holds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ringlb/result.h"

namespace ringlb::xdp {

// The names of the maps the data plane pins, in the skeleton's order.
Result<std::vector<std::string>> pinned_map_names();

// Removes the pin of each of pinned_map_names() under `pin_root`, then `pin_root`
// itself when that left it empty. A pin or directory that is not there is not an error.
Result<void> unpin_maps(const std::string& pin_root);

// For `ringlb attach --owner`: whether user `uid` (group `gid`) can reach `pin_root`,
// i.e. search every directory above it (systemd mounts /sys/fs/bpf 0700). The error
// names the first directory that stops it and how to open it.
Result<void> check_pin_root_reachable(const std::string& pin_root, uid_t uid, gid_t gid);

// Gives `pin_root` and the data plane's pins in it to `uid`:`gid` (modes stay 0700 and
// 0600): ringlbd running as that user can then open and update the maps.
Result<void> give_pins(const std::string& pin_root, uid_t uid, gid_t gid);

// What a pin under a pin root is.
struct PinnedMapInfo {
  std::string name;
  // Why the rest is missing ("cannot open: Permission denied", "not a map"), or empty.
  std::string problem;
  std::string type;  // libbpf's name of the map type ("hash", "percpu_array")
  uint32_t max_entries = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  std::optional<uint64_t> entries;  // in use, for hash maps (arrays are always full)
};

// Every pin directly under `pin_root`, in name order. The error's message is the reason
// the directory cannot be read ("No such file or directory").
Result<std::vector<PinnedMapInfo>> list_pinned_maps(const std::string& pin_root);

}  // namespace ringlb::xdp
