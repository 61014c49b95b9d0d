// The data plane's pins (pins.h): their names come from the skeleton, so a map added to
// bpf/maps.h with LIBBPF_PIN_BY_NAME is unpinned with the others.
#include "ringlb/xdp/pins.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ringlb/fd.h"
#include "skeleton_maps.h"

namespace ringlb::xdp {
namespace {

std::string map_type_name(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name != nullptr ? name : "unknown";
}

// Entries in use, for hash maps (arrays are always full).
std::optional<uint64_t> count_entries(int fd, const bpf_map_info& info) {
  if (info.type != BPF_MAP_TYPE_HASH && info.type != BPF_MAP_TYPE_LRU_HASH) {
    return std::nullopt;
  }
  std::vector<uint8_t> key(info.key_size), next(info.key_size);
  const void* previous = nullptr;
  uint64_t count = 0;
  while (bpf_map_get_next_key(fd, previous, next.data()) == 0) {
    key.swap(next);
    previous = key.data();
    ++count;
  }
  return count;
}

PinnedMapInfo describe_pin(const std::filesystem::path& pin) {
  PinnedMapInfo out;
  out.name = pin.filename().string();
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd.valid()) {
    out.problem = std::string("cannot open: ") + std::strerror(errno);
    return out;
  }
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
    out.problem = "not a map";
    return out;
  }
  out.type = map_type_name(info.type);
  out.max_entries = info.max_entries;
  out.key_size = info.key_size;
  out.value_size = info.value_size;
  out.entries = count_entries(fd.get(), info);
  return out;
}

}  // namespace

Result<std::vector<std::string>> pinned_map_names() {
  auto names = skeleton_map_names();
  if (!names) {
    return names.error();
  }
  return (*names)->pinned;
}

Result<void> unpin_maps(const std::string& pin_root) {
  auto names = skeleton_map_names();
  if (!names) {
    return names.error();
  }
  for (const std::string& name : (*names)->pinned) {
    const std::string path = pin_root + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return system_error("Failed to unpin " + path, errno);
    }
  }
  // Only if now empty: another program's pins, or a file put there, stay.
  if (::rmdir(pin_root.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST) {
    return system_error("Failed to remove pin directory " + pin_root, errno);
  }
  return {};
}

Result<std::vector<PinnedMapInfo>> list_pinned_maps(const std::string& pin_root) {
  std::error_code ec;
  std::vector<std::filesystem::path> pins;
  for (const auto& entry : std::filesystem::directory_iterator(pin_root, ec)) {
    pins.push_back(entry.path());
  }
  if (ec) {
    return Error{ec.message(), ec.value()};
  }
  std::sort(pins.begin(), pins.end());
  std::vector<PinnedMapInfo> out;
  for (const auto& pin : pins) {
    out.push_back(describe_pin(pin));
  }
  return out;
}

}  // namespace ringlb::xdp
