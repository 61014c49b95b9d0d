// The data plane's pins (pins.h): their names come from the skeleton, so a map added to
// bpf/maps.h with LIBBPF_PIN_BY_NAME is unpinned with the others.
#include "ringlb/xdp/pins.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
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

Result<void> check_pin_root_reachable(const std::string& pin_root, uid_t uid, gid_t gid) {
  // Every directory above the pin root must let the user search it (the pin root itself
  // will be the user's). Without CAP_DAC_READ_SEARCH, which the unit does not give.
  const std::filesystem::path root = std::filesystem::path(pin_root).lexically_normal();
  std::filesystem::path above;
  for (auto part = root.begin(); part != root.end(); ++part) {
    if (std::next(part) == root.end()) {
      break;
    }
    above /= *part;
    struct stat st {};
    if (::stat(above.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        break;  // attach creates the rest (0700, then given to the user)
      }
      return system_error("Failed to check " + above.string(), errno);
    }
    const bool searchable = st.st_uid == uid   ? (st.st_mode & S_IXUSR) != 0
                            : st.st_gid == gid ? (st.st_mode & S_IXGRP) != 0
                                               : (st.st_mode & S_IXOTH) != 0;
    if (!searchable) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%03o", st.st_mode & 0777);
      return Error{"uid " + std::to_string(uid) + " cannot reach " + pin_root + ": " +
                       above.string() + " is mode " + mode +
                       " and not its own; let every user pass through it (chmod o+x " +
                       above.string() + ", which lists nothing) or pin somewhere it can reach",
                   EACCES};
    }
  }
  return {};
}

Result<void> give_pins(const std::string& pin_root, uid_t uid, gid_t gid) {
  auto names = skeleton_map_names();
  if (!names) {
    return names.error();
  }
  if (::chown(pin_root.c_str(), uid, gid) != 0) {
    return system_error("Failed to give " + pin_root + " to uid " + std::to_string(uid), errno);
  }
  for (const std::string& name : (*names)->pinned) {
    const std::string path = pin_root + "/" + name;
    if (::chown(path.c_str(), uid, gid) != 0) {
      return system_error("Failed to give " + path + " to uid " + std::to_string(uid), errno);
    }
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
