// Maps are the state (include/ringlb/xdp/xdp.h): the one implementation that makes the XDP
// maps describe an XdpState, and reading that state back from the pinned maps.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "ringlb/model/validate.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::xdp {

static_assert(sizeof(ringlb_lb_state) == 32);
static_assert(sizeof(ringlb_vip_state) == RINGLB_NAME_LEN + 28);
static_assert(sizeof(ringlb_member_key) == 8);
static_assert(sizeof(ringlb_member) == RINGLB_NAME_LEN + 24);
static_assert(kMaxNameLength == RINGLB_NAME_LEN);

namespace {

using AddressKey = std::pair<uint32_t, std::array<uint32_t, 4>>;  // family, addr

ringlb_vip_key vip_key(const VipSpec& vip) {
  ringlb_vip_key key{};
  std::memcpy(key.addr, vip.listen.ip.bytes(), vip.listen.ip.size());
  key.port = htons(vip.listen.port);
  key.proto = vip.protocol == Protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
  key.family = vip.listen.ip.is_v4() ? RINGLB_FAMILY_V4 : RINGLB_FAMILY_V6;
  return key;
}

AddressKey address_key(const IpAddress& address) {
  AddressKey key{address.is_v4() ? RINGLB_FAMILY_V4 : RINGLB_FAMILY_V6, {}};
  std::memcpy(key.second.data(), address.bytes(), address.size());
  return key;
}

IpAddress ip_from(const uint32_t addr[4], uint32_t family) {
  if (family == RINGLB_FAMILY_V4) {
    in_addr a{};
    std::memcpy(&a, addr, 4);
    return IpAddress::v4(a);
  }
  in6_addr a{};
  std::memcpy(&a, addr, 16);
  return IpAddress::v6(a);
}

bool same_key(const ringlb_vip_key& a, const ringlb_vip_key& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

void copy_name(char (&out)[RINGLB_NAME_LEN], const std::string& name) {
  std::memset(out, 0, sizeof(out));
  std::memcpy(out, name.data(), std::min(name.size(), sizeof(out)));
}

std::string name_from(const char (&name)[RINGLB_NAME_LEN]) {
  return std::string(name, strnlen(name, RINGLB_NAME_LEN));
}

uint8_t member_state(AdminState state) {
  switch (state) {
    case AdminState::up:
      return RINGLB_MEMBER_UP;
    case AdminState::drain:
      return RINGLB_MEMBER_DRAIN;
    case AdminState::down:
      return RINGLB_MEMBER_DOWN;
  }
  return RINGLB_MEMBER_DOWN;
}

}  // namespace

Result<void> install_vip_index(const MapFds& maps, const std::vector<ringlb_vip_slot>& index) {
  if (index.size() != RINGLB_VIP_INDEX_ENTRIES) {
    return Error{"a VIP index has " + std::to_string(RINGLB_VIP_INDEX_ENTRIES) + " entries, not " +
                     std::to_string(index.size()),
                 EINVAL};
  }
  UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vip_index", sizeof(uint32_t),
                                sizeof(ringlb_vip_slot), RINGLB_VIP_INDEX_ENTRIES, nullptr));
  if (!inner.valid()) {
    return system_error("Failed to create a VIP index map", errno);
  }
  std::vector<uint32_t> keys(index.size());
  for (uint32_t i = 0; i < keys.size(); ++i) {
    keys[i] = i;
  }
  uint32_t count = static_cast<uint32_t>(index.size());
  LIBBPF_OPTS(bpf_map_batch_opts, batch_opts);
  if (bpf_map_update_batch(inner.get(), keys.data(), index.data(), &count, &batch_opts) != 0) {
    return system_error("Failed to fill the VIP index", errno);
  }
  const uint32_t zero = 0;
  const int inner_fd = inner.get();
  if (bpf_map_update_elem(maps.vip_index, &zero, &inner_fd, BPF_ANY) != 0) {
    return system_error("Failed to install the VIP index", errno);
  }
  return {};
}

namespace {

// What the maps hold now: apply_state keeps ids stable across edits.
struct OldMaps {
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> vips;
  std::map<AddressKey, uint32_t> backends;     // address -> backend id
  std::map<uint32_t, uint32_t> member_counts;  // vip id -> backend_count in vip_state
};

Result<OldMaps> read_old(const MapFds& maps) {
  OldMaps old;
  ringlb_vip_key key{};
  ringlb_vip_key next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(maps.vips, prev, &next) == 0) {
    ringlb_vip_info info{};
    if (bpf_map_lookup_elem(maps.vips, &next, &info) == 0) {
      old.vips.emplace_back(next, info);
    }
    key = next;
    prev = &key;
  }
  for (uint32_t id = 0; id < RINGLB_MAX_BACKENDS; ++id) {
    ringlb_backend entry{};
    if (bpf_map_lookup_elem(maps.backends, &id, &entry) == 0 && entry.family != 0) {
      old.backends[{entry.family, {entry.addr[0], entry.addr[1], entry.addr[2], entry.addr[3]}}] =
          id;
    }
  }
  for (uint32_t id = 0; id < RINGLB_MAX_VIPS; ++id) {
    ringlb_vip_state vs{};
    if (bpf_map_lookup_elem(maps.vip_state, &id, &vs) != 0) {
      return system_error("Failed to read the vip_state map", errno);
    }
    if (vs.name[0] != 0) {
      old.member_counts[id] = vs.backend_count;
    }
  }
  return old;
}

// The members a VIP records: a forward VIP's backends; a steered proxy VIP has none.
uint32_t member_count(const VipSpec& vip) {
  return vip.mode == Mode::forward ? static_cast<uint32_t>(vip.backends.size()) : 0;
}

// Deletes the members of `vip_id` from index `from` to `old_count`.
void trim_members(const MapFds& maps, uint32_t vip_id, uint32_t from, uint32_t old_count) {
  for (uint32_t i = from; i < old_count; ++i) {
    const ringlb_member_key key{.vip_id = vip_id, .index = i};
    bpf_map_delete_elem(maps.backend_state, &key);
  }
}

Result<void> write_members(const MapFds& maps, uint32_t vip_id, const VipSpec& vip) {
  uint32_t index = 0;
  if (vip.mode == Mode::forward) {
    for (const auto& b : vip.backends) {
      ringlb_member m{};
      copy_name(m.name, b.name);
      std::memcpy(m.addr, b.address.ip.bytes(), b.address.ip.size());
      m.port = htons(b.address.port);
      m.family = b.address.ip.is_v4() ? RINGLB_FAMILY_V4 : RINGLB_FAMILY_V6;
      m.state = member_state(b.state);
      m.weight = b.weight;
      const ringlb_member_key key{.vip_id = vip_id, .index = index++};
      if (bpf_map_update_elem(maps.backend_state, &key, &m, BPF_ANY) != 0) {
        return system_error("Failed to record backend " + b.name + " of vip " + vip.name, errno);
      }
    }
  }
  ringlb_vip_state vs{};
  copy_name(vs.name, vip.name);
  vs.key = vip_key(vip);
  vs.mode = vip.mode == Mode::forward ? RINGLB_MODE_FORWARD : RINGLB_MODE_STEER;
  vs.backend_count = index;
  if (bpf_map_update_elem(maps.vip_state, &vip_id, &vs, BPF_ANY) != 0) {
    return system_error("Failed to record vip " + vip.name, errno);
  }
  return {};
}

Result<void> forget_vip(const MapFds& maps, uint32_t vip_id, uint32_t old_count) {
  trim_members(maps, vip_id, 0, old_count);
  const ringlb_vip_state none{};
  if (bpf_map_update_elem(maps.vip_state, &vip_id, &none, BPF_ANY) != 0) {
    return system_error("Failed to clear the record of vip id " + std::to_string(vip_id), errno);
  }
  return {};
}

}  // namespace

XdpState state_from_config(const Config& config, uint32_t table_size,
                           const ringlb_hash_key& hash_key, uint32_t steer_workers) {
  XdpState state{.maglev_table_size = table_size,
                 .hash_key = hash_key,
                 .steer_workers = steer_workers,
                 .vips = {}};
  for (const auto& vip : config.vips) {
    if (vip.mode == Mode::proxy && steer_workers == 0) {
      continue;  // proxy VIPs pass to the stack untouched unless steer is on
    }
    state.vips.push_back(vip);
    if (vip.mode == Mode::proxy) {
      state.vips.back().backends.clear();
    }
  }
  return state;
}

Result<void> validate_state(const XdpState& state) {
  const auto problems =
      validate_vips(state.vips, Capacities{.vips = RINGLB_MAX_VIPS,
                                           .backend_addresses = RINGLB_MAX_BACKENDS,
                                           .members = RINGLB_MAX_MEMBERS});
  if (!problems.empty()) {
    return Error{problems_text(problems), EINVAL};
  }
  return {};
}

Result<PinnedMaps> PinnedMaps::open(const std::string& pin_root) {
  PinnedMaps maps;
  const std::pair<const char*, int MapFds::*> names[] = {
      {"vips", &MapFds::vips},
      {"vip_index", &MapFds::vip_index},
      {"vip_epochs", &MapFds::vip_epochs},
      {"vip_filter", &MapFds::vip_filter},
      {"backends", &MapFds::backends},
      {"maglev_tables", &MapFds::maglev_tables},
      {"cpu_map", &MapFds::cpu_map},
      {"lb_state", &MapFds::lb_state},
      {"vip_state", &MapFds::vip_state},
      {"backend_state", &MapFds::backend_state},
  };
  for (const auto& [name, member] : names) {
    const std::string path = pin_root + "/" + name;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid()) {
      const int err = errno;
      if (err == ENOENT && std::string_view(name) == "vips") {
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

Result<XdpState> read_state(const MapFds& maps) {
  const uint32_t zero = 0;
  ringlb_lb_state lb{};
  if (bpf_map_lookup_elem(maps.lb_state, &zero, &lb) != 0) {
    return system_error("Failed to read the lb_state map", errno);
  }
  if (lb.magic != RINGLB_STATE_MAGIC) {
    return Error{"the pinned maps record no state yet: run ringlb attach -c FILE again", ENOENT};
  }
  XdpState state{.maglev_table_size = lb.maglev_table_size,
                 .hash_key = {.k0 = lb.hash_k0, .k1 = lb.hash_k1},
                 .steer_workers = lb.steer_workers,
                 .vips = {},
                 .generation = lb.generation};
  for (uint32_t id = 0; id < RINGLB_MAX_VIPS; ++id) {
    ringlb_vip_state vs{};
    if (bpf_map_lookup_elem(maps.vip_state, &id, &vs) != 0) {
      return system_error("Failed to read the vip_state map", errno);
    }
    if (vs.name[0] == 0) {
      continue;
    }
    VipSpec vip;
    vip.name = name_from(vs.name);
    vip.listen =
        SocketAddress{.ip = ip_from(vs.key.addr, vs.key.family), .port = ntohs(vs.key.port)};
    vip.protocol = vs.key.proto == IPPROTO_UDP ? Protocol::udp : Protocol::tcp;
    vip.mode = vs.mode == RINGLB_MODE_FORWARD ? Mode::forward : Mode::proxy;
    if (vip.mode == Mode::forward) {
      vip.policy = PolicyKind::ip_hash;
    }
    for (uint32_t i = 0; i < vs.backend_count; ++i) {
      const ringlb_member_key key{.vip_id = id, .index = i};
      ringlb_member m{};
      if (bpf_map_lookup_elem(maps.backend_state, &key, &m) != 0) {
        return system_error("Failed to read backend " + std::to_string(i) + " of vip " + vip.name,
                            errno);
      }
      BackendSpec b;
      b.name = name_from(m.name);
      b.address = SocketAddress{.ip = ip_from(m.addr, m.family), .port = ntohs(m.port)};
      b.weight = m.weight;
      b.state = m.state == RINGLB_MEMBER_UP      ? AdminState::up
                : m.state == RINGLB_MEMBER_DRAIN ? AdminState::drain
                                                 : AdminState::down;
      vip.backends.push_back(std::move(b));
    }
    state.vips.push_back(std::move(vip));
  }
  return state;
}

Result<void> apply_state(const MapFds& maps, const XdpState& state, const BackendFilter& eligible) {
  if (auto valid = validate_state(state); !valid) {
    return valid;
  }
  const uint32_t table_size = state.maglev_table_size;
  auto old = read_old(maps);
  if (!old) {
    return old.error();
  }

  // Assign ids: a VIP keeps its id while its key stays, a backend while its address does.
  struct PlannedVip {
    const VipSpec* spec;
    ringlb_vip_key key;
    ringlb_vip_info info;
  };
  std::vector<PlannedVip> planned;
  std::set<uint32_t> used_vip_ids;
  for (const auto& vip : state.vips) {
    PlannedVip p{.spec = &vip, .key = vip_key(vip), .info = {}};
    p.info.mode = vip.mode == Mode::forward ? RINGLB_MODE_FORWARD : RINGLB_MODE_STEER;
    p.info.vip_id = UINT32_MAX;
    for (const auto& [key, info] : old->vips) {
      if (same_key(key, p.key)) {
        p.info.vip_id = info.vip_id;
        // Same VIP, same mode: its flows stay valid. Otherwise a new epoch below.
        p.info.epoch = info.mode == p.info.mode ? info.epoch : UINT32_MAX;
      }
    }
    if (p.info.vip_id != UINT32_MAX) {
      used_vip_ids.insert(p.info.vip_id);
    }
    planned.push_back(p);
  }
  uint32_t next_vip_id = 0;
  for (auto& p : planned) {
    if (p.info.vip_id == UINT32_MAX) {
      while (used_vip_ids.count(next_vip_id) != 0) {
        ++next_vip_id;
      }
      if (next_vip_id >= RINGLB_MAX_VIPS) {
        return Error{"vip: more than " + std::to_string(RINGLB_MAX_VIPS) + " VIPs", EINVAL};
      }
      p.info.vip_id = next_vip_id;
      p.info.epoch = UINT32_MAX;
      used_vip_ids.insert(next_vip_id);
    }
  }

  std::map<AddressKey, uint32_t> backend_ids;
  std::set<uint32_t> used_backend_ids;
  for (const auto& p : planned) {
    if (p.info.mode != RINGLB_MODE_FORWARD) {
      continue;
    }
    for (const auto& b : p.spec->backends) {
      if (b.state == AdminState::down) {
        continue;
      }
      const auto key = address_key(b.address.ip);
      if (auto it = old->backends.find(key); it != old->backends.end()) {
        backend_ids[key] = it->second;
        used_backend_ids.insert(it->second);
      } else {
        backend_ids[key] = UINT32_MAX;
      }
    }
  }
  uint32_t next_backend_id = 0;
  for (auto& [key, id] : backend_ids) {
    if (id != UINT32_MAX) {
      continue;
    }
    while (used_backend_ids.count(next_backend_id) != 0) {
      ++next_backend_id;
    }
    if (next_backend_id >= RINGLB_MAX_BACKENDS) {
      return Error{
          "vip: more than " + std::to_string(RINGLB_MAX_BACKENDS) + " distinct backend addresses",
          EINVAL};
    }
    id = next_backend_id;
    used_backend_ids.insert(id);
  }

  // Nothing is written above this line: a bad state leaves the maps as they were.
  // 0. The rodata a rebuild needs (the CLI reads it back), and the next generation.
  const uint32_t zero = 0;
  ringlb_lb_state old_lb{};
  if (bpf_map_lookup_elem(maps.lb_state, &zero, &old_lb) != 0) {
    return system_error("Failed to read the lb_state map", errno);
  }
  const ringlb_lb_state lb{
      .magic = RINGLB_STATE_MAGIC,
      .maglev_table_size = table_size,
      .hash_k0 = state.hash_key.k0,
      .hash_k1 = state.hash_key.k1,
      .steer_workers = state.steer_workers,
      .generation = old_lb.magic == RINGLB_STATE_MAGIC ? old_lb.generation + 1 : 1};
  if (bpf_map_update_elem(maps.lb_state, &zero, &lb, BPF_ANY) != 0) {
    return system_error("Failed to update the lb_state map", errno);
  }

  // 1. Backends first: a table never names a backend the program cannot resolve.
  for (const auto& [key, id] : backend_ids) {
    ringlb_backend entry{};
    std::memcpy(entry.addr, key.second.data(), 16);
    entry.family = key.first;
    if (bpf_map_update_elem(maps.backends, &id, &entry, BPF_ANY) != 0) {
      return system_error("Failed to update the backends map", errno);
    }
  }

  // 2. Tables: fill a fresh inner map, then swap it in with one update.
  std::vector<uint32_t> keys(table_size);
  for (uint32_t i = 0; i < table_size; ++i) {
    keys[i] = i;
  }
  std::vector<uint32_t> values(table_size);
  for (const auto& p : planned) {
    if (p.info.mode != RINGLB_MODE_FORWARD) {
      continue;
    }
    const ForwardTable table = build_forward_table(*p.spec, table_size, eligible);
    if (table.slots.empty()) {
      // No eligible backend: no table, and the program drops new flows (DROP_NO_BACKEND).
      bpf_map_delete_elem(maps.maglev_tables, &p.info.vip_id);
      continue;
    }
    for (uint32_t i = 0; i < table_size; ++i) {
      values[i] = backend_ids.at(address_key(p.spec->backends[table.slots[i]].address.ip));
    }
    UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, "maglev_table", sizeof(uint32_t),
                                  sizeof(uint32_t), table_size, nullptr));
    if (!inner.valid()) {
      return system_error("Failed to create a Maglev table map", errno);
    }
    uint32_t count = table_size;
    LIBBPF_OPTS(bpf_map_batch_opts, batch_opts);
    if (bpf_map_update_batch(inner.get(), keys.data(), values.data(), &count, &batch_opts) != 0) {
      return system_error("Failed to fill the Maglev table of vip " + p.spec->name, errno);
    }
    const int inner_fd = inner.get();
    if (bpf_map_update_elem(maps.maglev_tables, &p.info.vip_id, &inner_fd, BPF_ANY) != 0) {
      return system_error("Failed to install the Maglev table of vip " + p.spec->name, errno);
    }
  }

  // 3. VIPs, now that their tables are in place; then remove VIPs no longer present.
  // The address pre-filter covers old and new VIPs while both may be in the map, and
  // only the new ones at the end.
  ringlb_vip_filter filter{};
  if (bpf_map_lookup_elem(maps.vip_filter, &zero, &filter) != 0) {
    return system_error("Failed to read the VIP filter", errno);
  }
  ringlb_vip_filter next_filter{};
  for (const auto& p : planned) {
    const uint32_t bit = ringlb_vip_filter_bit(p.key.addr);
    filter.bits[bit / 64] |= 1ull << (bit % 64);
    next_filter.bits[bit / 64] |= 1ull << (bit % 64);
  }
  if (bpf_map_update_elem(maps.vip_filter, &zero, &filter, BPF_ANY) != 0) {
    return system_error("Failed to update the VIP filter", errno);
  }
  const int epochs_fd = maps.vip_epochs;
  auto bump_epoch = [epochs_fd](uint32_t vip_id) -> Result<uint32_t> {
    uint32_t epoch = 0;
    if (bpf_map_lookup_elem(epochs_fd, &vip_id, &epoch) != 0) {
      return system_error("Failed to read the epoch of vip id " + std::to_string(vip_id), errno);
    }
    ++epoch;
    if (bpf_map_update_elem(epochs_fd, &vip_id, &epoch, BPF_ANY) != 0) {
      return system_error("Failed to update the epoch of vip id " + std::to_string(vip_id), errno);
    }
    return epoch;
  };
  for (auto& p : planned) {
    if (p.info.epoch == UINT32_MAX) {
      auto epoch = bump_epoch(p.info.vip_id);  // retires flows of the id's previous VIP
      if (!epoch) {
        return epoch.error();
      }
      p.info.epoch = *epoch;
    }
  }
  for (const auto& p : planned) {
    if (bpf_map_update_elem(maps.vips, &p.key, &p.info, BPF_ANY) != 0) {
      return system_error("Failed to update the vips map for vip " + p.spec->name, errno);
    }
  }
  // The index holds the new VIPs alone: the old ones still in `vips` are about to go.
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> indexed;
  for (const auto& p : planned) {
    indexed.emplace_back(p.key, p.info);
  }
  if (auto installed = install_vip_index(maps, build_vip_index(indexed)); !installed) {
    return installed;
  }
  for (const auto& [key, info] : old->vips) {
    bool kept = false;
    for (const auto& p : planned) {
      kept = kept || same_key(key, p.key);
    }
    if (!kept) {
      bpf_map_delete_elem(maps.vips, &key);
      if (used_vip_ids.count(info.vip_id) == 0) {
        bpf_map_delete_elem(maps.maglev_tables, &info.vip_id);
        if (auto epoch = bump_epoch(info.vip_id); !epoch) {  // retires its flows
          return epoch.error();
        }
      }
    }
  }
  if (bpf_map_update_elem(maps.vip_filter, &zero, &next_filter, BPF_ANY) != 0) {
    return system_error("Failed to update the VIP filter", errno);
  }
  // 4. Backends no VIP uses any more (state down, removed): flows on them pick again.
  for (const auto& [key, id] : old->backends) {
    if (backend_ids.count(key) == 0) {
      ringlb_backend none{};
      bpf_map_update_elem(maps.backends, &id, &none, BPF_ANY);
    }
  }

  // 5. The record the CLI rebuilds from. Members that go are deleted before any is added,
  // so backend_state never holds more than the larger of the old and the new members (a
  // full map would stop the record half-written).
  for (const auto& [vip_id, count] : old->member_counts) {
    if (used_vip_ids.count(vip_id) == 0) {
      if (auto forgotten = forget_vip(maps, vip_id, count); !forgotten) {
        return forgotten;
      }
    }
  }
  for (const auto& p : planned) {
    const auto it = old->member_counts.find(p.info.vip_id);
    if (it != old->member_counts.end()) {
      trim_members(maps, p.info.vip_id, member_count(*p.spec), it->second);
    }
  }
  for (const auto& p : planned) {
    if (auto written = write_members(maps, p.info.vip_id, *p.spec); !written) {
      return written;
    }
  }

  // 6. steer mode: one cpumap queue per worker CPU.
  const uint32_t cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());
  for (uint32_t worker = 0; worker < state.steer_workers && worker < cpus; ++worker) {
    bpf_cpumap_val value{};
    value.qsize = 2048;
    if (bpf_map_update_elem(maps.cpu_map, &worker, &value, BPF_ANY) != 0) {
      return system_error("Failed to add CPU " + std::to_string(worker) + " to the cpumap", errno);
    }
  }
  resolve_next_hops(state.vips);
  return {};
}

std::vector<ringlb_vip_slot> build_vip_index(
    const std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>>& vips) {
  std::vector<ringlb_vip_slot> index(RINGLB_VIP_INDEX_ENTRIES);
  uint32_t left_out = 0;
  for (const auto& [key, info] : vips) {
    const uint32_t first = ringlb_vip_index_slot(&key);
    bool placed = false;
    for (uint32_t i = 0; i < RINGLB_VIP_INDEX_PROBES && !placed; ++i) {
      ringlb_vip_slot& slot = index[(first + i) & (RINGLB_VIP_INDEX_SLOTS - 1)];
      if (slot.key.family == RINGLB_FAMILY_NONE) {
        slot = ringlb_vip_slot{.key = key, .info = info};
        placed = true;
      }
    }
    left_out += placed ? 0 : 1;
  }
  index[RINGLB_VIP_INDEX_SLOTS].info.vip_id = left_out;
  return index;
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
