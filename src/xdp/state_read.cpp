// Reading the maps (state.h, state_io.h): the pinned maps opened by the skeleton's names,
// the state lock, the state and the tables as the maps hold them.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <string_view>

#include "map_codec.h"
#include "ringlb/xdp/state.h"
#include "skeleton_maps.h"
#include "state_io.h"

namespace ringlb::xdp {
namespace {

// The vips map's entries, in the map's order (entries that vanish meanwhile are skipped).
std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> read_vips(int vips_fd) {
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> out;
  ringlb_vip_key key{};
  ringlb_vip_key next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(vips_fd, prev, &next) == 0) {
    ringlb_vip_info info{};
    if (bpf_map_lookup_elem(vips_fd, &next, &info) == 0) {
      out.emplace_back(next, info);
    }
    key = next;
    prev = &key;
  }
  return out;
}

// The record of every vip id (name[0] == 0: unused).
Result<std::vector<ringlb_vip_state>> read_vip_records(int vip_state_fd) {
  std::vector<ringlb_vip_state> out(RINGLB_MAX_VIPS);
  for (uint32_t id = 0; id < RINGLB_MAX_VIPS; ++id) {
    if (bpf_map_lookup_elem(vip_state_fd, &id, &out[id]) != 0) {
      return system_error("Failed to read the vip_state map", errno);
    }
  }
  return out;
}

Result<ringlb_lb_state> read_lb_state(int lb_state_fd) {
  const uint32_t zero = 0;
  ringlb_lb_state lb{};
  if (bpf_map_lookup_elem(lb_state_fd, &zero, &lb) != 0) {
    return system_error("Failed to read the lb_state map", errno);
  }
  return lb;
}

// The members vip `id` records (`record`), in order.
Result<std::vector<BackendSpec>> read_members(const MapFds& maps, uint32_t id,
                                              const ringlb_vip_state& record) {
  std::vector<BackendSpec> out;
  for (uint32_t i = 0; i < record.backend_count; ++i) {
    const ringlb_member_key key{.vip_id = id, .index = i};
    ringlb_member m{};
    if (bpf_map_lookup_elem(maps.backend_state, &key, &m) != 0) {
      return system_error(
          "Failed to read backend " + std::to_string(i) + " of vip " + vip_from(record).name,
          errno);
    }
    out.push_back(backend_from(m));
  }
  return out;
}

}  // namespace

Result<PinnedMaps> PinnedMaps::open(const std::string& pin_root) {
  auto names = skeleton_map_names();
  if (!names) {
    return names.error();
  }
  PinnedMaps maps;
  for (const auto& [member, name] : (*names)->state) {
    const std::string path = pin_root + "/" + name;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid()) {
      const int err = errno;
      if (err == ENOENT && member == &MapFds::vips) {
        return Error{"no ringlb XDP program has pinned its maps under " + pin_root +
                         " (run ringlb attach DEV -c FILE --pin-path " + pin_root + " first)",
                     ENOENT};
      }
      if (err == ENOENT) {
        return Error{"the maps pinned under " + pin_root + " have no " + name +
                         " map (pinned by an older ringlb): run ringlb attach -c FILE again",
                     ENOENT};
      }
      return system_error("Failed to open pinned map " + path, err);
    }
    maps.fds_.*member = fd.get();
    maps.owned_.push_back(std::move(fd));
  }
  return maps;
}

Result<StateLock> StateLock::take(const std::string& pin_root, bool exclusive) {
  StateLock lock;
  lock.fd_.reset(::open(pin_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!lock.fd_.valid()) {
    return system_error("Failed to open pin directory " + pin_root, errno);
  }
  if (::flock(lock.fd_.get(), exclusive ? LOCK_EX : LOCK_SH) != 0) {
    return system_error("Failed to lock pin directory " + pin_root, errno);
  }
  return lock;
}

Result<MapContents> read_map_contents(const MapFds& maps) {
  MapContents old;
  old.vips = read_vips(maps.vips);
  for (uint32_t id = 0; id < RINGLB_MAX_BACKENDS; ++id) {
    ringlb_backend entry{};
    if (bpf_map_lookup_elem(maps.backends, &id, &entry) == 0 && entry.family != 0) {
      old.backends[{entry.family, {entry.addr[0], entry.addr[1], entry.addr[2], entry.addr[3]}}] =
          id;
    }
  }
  auto records = read_vip_records(maps.vip_state);
  if (!records) {
    return records.error();
  }
  for (uint32_t id = 0; id < RINGLB_MAX_VIPS; ++id) {
    if ((*records)[id].name[0] != 0) {
      old.member_counts[id] = (*records)[id].backend_count;
    }
  }
  auto lb = read_lb_state(maps.lb_state);
  if (!lb) {
    return lb.error();
  }
  old.generation = lb->magic == RINGLB_STATE_MAGIC ? lb->generation : 0;
  return old;
}

Result<XdpState> read_state(const MapFds& maps) {
  auto lb = read_lb_state(maps.lb_state);
  if (!lb) {
    return lb.error();
  }
  if (lb->magic != RINGLB_STATE_MAGIC) {
    return Error{"the pinned maps record no state yet: run ringlb attach -c FILE again", ENOENT};
  }
  XdpState state{.maglev_table_size = lb->maglev_table_size,
                 .hash_key = {.k0 = lb->hash_k0, .k1 = lb->hash_k1},
                 .steer_workers = lb->steer_workers,
                 .vips = {},
                 .generation = lb->generation};
  auto records = read_vip_records(maps.vip_state);
  if (!records) {
    return records.error();
  }
  for (uint32_t id = 0; id < RINGLB_MAX_VIPS; ++id) {
    const ringlb_vip_state& record = (*records)[id];
    if (record.name[0] == 0) {
      continue;
    }
    VipSpec vip = vip_from(record);
    auto members = read_members(maps, id, record);
    if (!members) {
      return members.error();
    }
    vip.backends = std::move(*members);
    state.vips.push_back(std::move(vip));
  }
  return state;
}

Result<std::vector<ringlb_vip_slot>> read_vip_index(const MapFds& maps) {
  const uint32_t zero = 0;
  uint32_t inner_id = 0;
  if (bpf_map_lookup_elem(maps.vip_index, &zero, &inner_id) != 0) {
    return system_error("Failed to read the VIP index", errno);
  }
  UniqueFd inner(bpf_map_get_fd_by_id(inner_id));
  if (!inner.valid()) {
    return system_error("Failed to open the VIP index", errno);
  }
  std::vector<ringlb_vip_slot> index(RINGLB_VIP_INDEX_ENTRIES);
  for (uint32_t i = 0; i < RINGLB_VIP_INDEX_ENTRIES; ++i) {
    if (bpf_map_lookup_elem(inner.get(), &i, &index[i]) != 0) {
      return system_error("Failed to read the VIP index", errno);
    }
  }
  return index;
}

Result<uint32_t> pinned_vip_id(const MapFds& maps, const VipSpec& vip) {
  const ringlb_vip_key key = vip_key(vip);
  ringlb_vip_info info{};
  if (bpf_map_lookup_elem(maps.vips, &key, &info) != 0) {
    return Error{"vip " + vip.name + " is not in the vips map", ENOENT};
  }
  return info.vip_id;
}

Result<std::vector<uint32_t>> read_maglev_table(const MapFds& maps, uint32_t vip_id) {
  uint32_t inner_id = 0;
  if (bpf_map_lookup_elem(maps.maglev_tables, &vip_id, &inner_id) != 0) {
    return std::vector<uint32_t>{};  // no table: no eligible backend
  }
  UniqueFd inner(bpf_map_get_fd_by_id(inner_id));
  if (!inner.valid()) {
    return system_error("Failed to open the Maglev table of vip id " + std::to_string(vip_id),
                        errno);
  }
  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(inner.get(), &info, &info_len) != 0) {
    return system_error("Failed to inspect the Maglev table of vip id " + std::to_string(vip_id),
                        errno);
  }
  std::vector<uint32_t> keys(info.max_entries);
  std::vector<uint32_t> slots(info.max_entries);
  uint32_t count = info.max_entries;
  uint32_t batch = 0;
  LIBBPF_OPTS(bpf_map_batch_opts, batch_opts);
  // An array returns every entry in one batch when the buffers hold them all.
  const int err = bpf_map_lookup_batch(inner.get(), nullptr, &batch, keys.data(), slots.data(),
                                       &count, &batch_opts);
  if ((err != 0 && errno != ENOENT) || count != info.max_entries) {
    return system_error("Failed to read the Maglev table of vip id " + std::to_string(vip_id),
                        errno);
  }
  return slots;
}

Result<std::map<uint32_t, IpAddress>> read_backend_addresses(const MapFds& maps) {
  std::map<uint32_t, IpAddress> out;
  for (uint32_t id = 0; id < RINGLB_MAX_BACKENDS; ++id) {
    ringlb_backend entry{};
    if (bpf_map_lookup_elem(maps.backends, &id, &entry) != 0) {
      return system_error("Failed to read the backends map", errno);
    }
    if (entry.family != 0) {
      out.emplace(id, ip_from(entry.addr, entry.family));
    }
  }
  return out;
}

}  // namespace ringlb::xdp
