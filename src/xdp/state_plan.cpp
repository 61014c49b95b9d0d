// The state the maps are to describe, its validation, and the pure plan of an apply
// (state.h, state_plan.h). Nothing here touches a map.
#include "ringlb/xdp/state_plan.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "map_codec.h"
#include "ringlb/model/validate.h"

namespace ringlb::xdp {
namespace {

bool same_key(const ringlb_vip_key& a, const ringlb_vip_key& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// The lowest id from `next` on that `used` does not hold.
uint32_t next_free(const std::set<uint32_t>& used, uint32_t next) {
  while (used.count(next) != 0) {
    ++next;
  }
  return next;
}

// Each VIP's id and epoch: a VIP keeps the id of its key, and its epoch unless its mode
// changed; new VIPs take the lowest free ids and a new epoch.
Result<void> plan_vips(const MapContents& old, const XdpState& state, StatePlan& plan) {
  std::set<uint32_t> used;
  for (const auto& vip : state.vips) {
    PlannedVip p{.spec = &vip, .key = vip_key(vip), .info = {}, .new_epoch = false};
    p.info.mode = vip_mode(vip);
    p.info.vip_id = UINT32_MAX;
    for (const auto& [key, info] : old.vips) {
      if (same_key(key, p.key)) {
        p.info.vip_id = info.vip_id;
        // Same VIP, same mode: its flows stay valid. Otherwise a new epoch.
        p.new_epoch = info.mode != p.info.mode;
        p.info.epoch = p.new_epoch ? 0 : info.epoch;
      }
    }
    if (p.info.vip_id != UINT32_MAX) {
      used.insert(p.info.vip_id);
    }
    plan.vips.push_back(p);
  }
  uint32_t next = 0;
  for (auto& p : plan.vips) {
    if (p.info.vip_id != UINT32_MAX) {
      continue;
    }
    next = next_free(used, next);
    if (next >= RINGLB_MAX_VIPS) {
      return Error{"vip: more than " + std::to_string(RINGLB_MAX_VIPS) + " VIPs", EINVAL};
    }
    p.info.vip_id = next;
    p.new_epoch = true;
    used.insert(next);
  }
  return {};
}

// Backend ids: an address keeps its id; new addresses take the lowest free ids. Only
// backends of forward VIPs that are not down have one.
Result<void> plan_backends(const MapContents& old, StatePlan& plan) {
  std::set<uint32_t> used;
  for (const auto& p : plan.vips) {
    if (p.info.mode != RINGLB_MODE_FORWARD) {
      continue;
    }
    for (const auto& b : p.spec->backends) {
      if (b.state == AdminState::down) {
        continue;
      }
      const auto key = address_key(b.address.ip);
      if (auto it = old.backends.find(key); it != old.backends.end()) {
        plan.backend_ids[key] = it->second;
        used.insert(it->second);
      } else {
        plan.backend_ids[key] = UINT32_MAX;
      }
    }
  }
  uint32_t next = 0;
  for (auto& [key, id] : plan.backend_ids) {
    if (id != UINT32_MAX) {
      continue;
    }
    next = next_free(used, next);
    if (next >= RINGLB_MAX_BACKENDS) {
      return Error{
          "vip: more than " + std::to_string(RINGLB_MAX_BACKENDS) + " distinct backend addresses",
          EINVAL};
    }
    id = next;
    used.insert(id);
  }
  for (const auto& [key, id] : old.backends) {
    if (plan.backend_ids.count(key) == 0) {
      plan.released_backend_ids.push_back(id);
    }
  }
  return {};
}

// What goes: VIPs whose key left, the records of ids no VIP has, members past a VIP's new
// count.
void plan_removals(const MapContents& old, StatePlan& plan) {
  std::set<uint32_t> used;
  for (const auto& p : plan.vips) {
    used.insert(p.info.vip_id);
  }
  for (const auto& [key, info] : old.vips) {
    bool kept = false;
    for (const auto& p : plan.vips) {
      kept = kept || same_key(key, p.key);
    }
    if (!kept) {
      plan.removed_vips.push_back(RemovedVip{
          .key = key, .vip_id = info.vip_id, .id_retired = used.count(info.vip_id) == 0});
    }
  }
  for (const auto& [vip_id, count] : old.member_counts) {
    if (used.count(vip_id) == 0) {
      plan.forgotten_vips.push_back(ForgottenVip{.vip_id = vip_id, .member_count = count});
    }
  }
  for (const auto& p : plan.vips) {
    const auto it = old.member_counts.find(p.info.vip_id);
    if (it != old.member_counts.end() && member_count(*p.spec) < it->second) {
      plan.member_trims.push_back(
          MemberTrim{.vip_id = p.info.vip_id, .from = member_count(*p.spec), .to = it->second});
    }
  }
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

uint32_t member_count(const VipSpec& vip) {
  return vip.mode == Mode::forward ? static_cast<uint32_t>(vip.backends.size()) : 0;
}

Result<StatePlan> plan_state(const MapContents& old, const XdpState& state) {
  StatePlan plan;
  if (auto planned = plan_vips(old, state, plan); !planned) {
    return planned.error();
  }
  if (auto planned = plan_backends(old, plan); !planned) {
    return planned.error();
  }
  plan_removals(old, plan);
  for (const auto& p : plan.vips) {
    const uint32_t bit = ringlb_vip_filter_bit(p.key.addr);
    plan.filter.bits[bit / 64] |= 1ull << (bit % 64);
  }
  plan.lb_state = ringlb_lb_state{.magic = RINGLB_STATE_MAGIC,
                                  .maglev_table_size = state.maglev_table_size,
                                  .hash_k0 = state.hash_key.k0,
                                  .hash_k1 = state.hash_key.k1,
                                  .steer_workers = state.steer_workers,
                                  .generation = old.generation + 1};
  return plan;
}

std::vector<uint32_t> planned_table(const StatePlan& plan, const PlannedVip& vip,
                                    const BackendFilter& eligible) {
  const uint32_t table_size = plan.lb_state.maglev_table_size;
  const ForwardTable table = build_forward_table(*vip.spec, table_size, eligible);
  if (table.slots.empty()) {
    return {};
  }
  std::vector<uint32_t> backend_ids(table_size);
  for (uint32_t i = 0; i < table_size; ++i) {
    backend_ids[i] =
        plan.backend_ids.at(address_key(vip.spec->backends[table.slots[i]].address.ip));
  }
  return backend_ids;
}

std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> fragment_vips(
    const std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>>& vips) {
  std::map<std::tuple<std::array<uint32_t, 4>, uint8_t, uint8_t>, std::vector<ringlb_vip_info>>
      by_address;
  for (const auto& [key, info] : vips) {
    by_address[{std::to_array(key.addr), key.proto, key.family}].push_back(info);
  }
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> entries;
  for (const auto& [where, infos] : by_address) {
    if (infos.size() != 1 || infos[0].mode != RINGLB_MODE_FORWARD) {
      continue;  // ambiguous without ports, or not forwarded: the kernel's
    }
    ringlb_vip_key key{};
    const auto& [addr, proto, family] = where;
    std::copy(addr.begin(), addr.end(), key.addr);
    key.proto = proto;
    key.family = family;
    entries.emplace_back(key, infos[0]);
  }
  return entries;
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

}  // namespace ringlb::xdp
