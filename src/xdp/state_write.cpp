// apply_state (state.h): validate, read what the maps hold, plan (state_plan.cpp), then
// write what the plan says in dependency order, all under the caller's StateLock:
//   0. lb_state (the rodata a rebuild needs, the next generation)
//   1. backends, before any table names them
//   2. each forward VIP's table, filled in a new inner map and swapped in with one update
//   3. the VIPs: address pre-filter (old and new), epochs, vips entries, the VIP index,
//      then the removed VIPs and the new VIPs' filter
//   4. backend ids no VIP uses any more
//   5. the record the CLI rebuilds from (vip_state, backend_state)
//   6. the cpumap queues of steer mode
// Nothing is written before the plan exists: a bad state leaves the maps as they were.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "map_codec.h"
#include "ringlb/fd.h"
#include "ringlb/xdp/next_hops.h"
#include "ringlb/xdp/state.h"
#include "ringlb/xdp/state_plan.h"
#include "state_io.h"

namespace ringlb::xdp {
namespace {

constexpr uint32_t kZero = 0;

// An inner array: its map name, what kind of map it is and which one, for errors.
struct InnerArray {
  const char* map_name;  // "maglev_table"
  const char* kind;      // "Maglev table"
  std::string what;      // "Maglev table of vip web"
};

// Fills a new array of `count` entries with `values` (entry i: values[i]) and puts it at
// `outer_fd`[`outer_key`], in one update.
Result<void> swap_in_array(int outer_fd, uint32_t outer_key, const InnerArray& array,
                           uint32_t value_size, const void* values, uint32_t count) {
  const std::string& what = array.what;
  UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, array.map_name, sizeof(uint32_t), value_size,
                                count, nullptr));
  if (!inner.valid()) {
    return system_error(std::string("Failed to create a ") + array.kind + " map", errno);
  }
  std::vector<uint32_t> keys(count);
  for (uint32_t i = 0; i < count; ++i) {
    keys[i] = i;
  }
  uint32_t filled = count;
  LIBBPF_OPTS(bpf_map_batch_opts, batch_opts);
  if (bpf_map_update_batch(inner.get(), keys.data(), values, &filled, &batch_opts) != 0) {
    return system_error("Failed to fill the " + what, errno);
  }
  const int inner_fd = inner.get();
  if (bpf_map_update_elem(outer_fd, &outer_key, &inner_fd, BPF_ANY) != 0) {
    return system_error("Failed to install the " + what, errno);
  }
  return {};
}

// Moves the epoch of `vip_id` on (retiring the flows recorded under it); returns it.
Result<uint32_t> bump_epoch(const MapFds& maps, uint32_t vip_id) {
  uint32_t epoch = 0;
  if (bpf_map_lookup_elem(maps.vip_epochs, &vip_id, &epoch) != 0) {
    return system_error("Failed to read the epoch of vip id " + std::to_string(vip_id), errno);
  }
  ++epoch;
  if (bpf_map_update_elem(maps.vip_epochs, &vip_id, &epoch, BPF_ANY) != 0) {
    return system_error("Failed to update the epoch of vip id " + std::to_string(vip_id), errno);
  }
  // Flow entries keep the epoch's low bits: when they come round, entries made
  // 2^RINGLB_FLOW_EPOCH_BITS bumps ago would match again, so the id's entries go.
  if ((epoch & ((1u << RINGLB_FLOW_EPOCH_BITS) - 1)) == 0) {
    if (auto cleared = clear_vip_flows(maps.flows, vip_id); !cleared) {
      return cleared.error();
    }
  }
  return epoch;
}

}  // namespace

Result<void> clear_vip_flows(int flows_fd, uint32_t vip_id) {
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(flows_fd, &info, &length) != 0) {
    return system_error("Failed to read the flow table", errno);
  }
  for (uint32_t index = 0; index < info.max_entries; ++index) {
    ringlb_flow_bucket bucket{};
    if (bpf_map_lookup_elem(flows_fd, &index, &bucket) != 0) {
      return system_error("Failed to read the flow table", errno);
    }
    bool changed = false;
    for (auto& way : bucket.ways) {
      if (way.fp != 0 && ringlb_flow_vip(way.bind) == vip_id) {
        way = ringlb_flow_entry{};
        changed = true;
      }
    }
    if (changed && bpf_map_update_elem(flows_fd, &index, &bucket, BPF_ANY) != 0) {
      return system_error("Failed to clear flows of vip id " + std::to_string(vip_id), errno);
    }
  }
  return {};
}

namespace {

// 1. Backends first: a table never names a backend the program cannot resolve.
Result<void> write_backends(const MapFds& maps, const StatePlan& plan) {
  for (const auto& [key, id] : plan.backend_ids) {
    ringlb_backend entry{};
    std::memcpy(entry.addr, key.second.data(), 16);
    entry.family = key.first;
    if (bpf_map_update_elem(maps.backends, &id, &entry, BPF_ANY) != 0) {
      return system_error("Failed to update the backends map", errno);
    }
  }
  return {};
}

// 2. Tables: fill a fresh inner map, then swap it in with one update.
Result<void> write_tables(const MapFds& maps, const StatePlan& plan,
                          const BackendFilter& eligible) {
  for (const auto& p : plan.vips) {
    if (p.info.mode != RINGLB_MODE_FORWARD) {
      continue;
    }
    const std::vector<uint32_t> table = planned_table(plan, p, eligible);
    if (table.empty()) {
      // No eligible backend: no table, and the program drops new flows (DROP_NO_BACKEND).
      bpf_map_delete_elem(maps.maglev_tables, &p.info.vip_id);
      continue;
    }
    const InnerArray array{.map_name = "maglev_table",
                           .kind = "Maglev table",
                           .what = "Maglev table of vip " + p.spec->name};
    if (auto swapped = swap_in_array(maps.maglev_tables, p.info.vip_id, array, sizeof(uint32_t),
                                     table.data(), static_cast<uint32_t>(table.size()));
        !swapped) {
      return swapped;
    }
  }
  return {};
}

// `frag_vips` becomes `entries`: they are written, then the keys not among them go.
Result<void> write_fragment_vips(
    const MapFds& maps, const std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>>& entries) {
  std::set<std::vector<uint8_t>> kept;
  for (const auto& [key, info] : entries) {
    if (bpf_map_update_elem(maps.frag_vips, &key, &info, BPF_ANY) != 0) {
      return system_error("Failed to update the frag_vips map", errno);
    }
    const auto* bytes = reinterpret_cast<const uint8_t*>(&key);
    kept.emplace(bytes, bytes + sizeof(key));
  }
  std::vector<ringlb_vip_key> stale;
  ringlb_vip_key key{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(maps.frag_vips, previous, &key) == 0) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&key);
    if (!kept.contains(std::vector<uint8_t>(bytes, bytes + sizeof(key)))) {
      stale.push_back(key);
    }
    previous = &key;
  }
  for (const auto& gone : stale) {
    bpf_map_delete_elem(maps.frag_vips, &gone);
  }
  return {};
}

// 3. VIPs, now that their tables are in place; then the VIPs no longer present go. The
// address pre-filter covers old and new VIPs while both may be in the map, and only the
// new ones at the end.
Result<void> write_vips(const MapFds& maps, StatePlan& plan) {
  ringlb_vip_filter filter{};
  if (bpf_map_lookup_elem(maps.vip_filter, &kZero, &filter) != 0) {
    return system_error("Failed to read the VIP filter", errno);
  }
  for (size_t i = 0; i < std::size(filter.bits); ++i) {
    filter.bits[i] |= plan.filter.bits[i];
  }
  if (bpf_map_update_elem(maps.vip_filter, &kZero, &filter, BPF_ANY) != 0) {
    return system_error("Failed to update the VIP filter", errno);
  }
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> indexed;
  for (auto& p : plan.vips) {
    if (p.new_epoch) {
      auto epoch = bump_epoch(maps, p.info.vip_id);  // retires flows of the id's previous VIP
      if (!epoch) {
        return epoch.error();
      }
      p.info.epoch = *epoch;
    }
    indexed.emplace_back(p.key, p.info);
  }
  for (const auto& p : plan.vips) {
    if (bpf_map_update_elem(maps.vips, &p.key, &p.info, BPF_ANY) != 0) {
      return system_error("Failed to update the vips map for vip " + p.spec->name, errno);
    }
  }
  // The index holds the new VIPs alone: the old ones still in `vips` are about to go.
  if (auto installed = install_vip_index(maps, build_vip_index(indexed)); !installed) {
    return installed;
  }
  if (auto written = write_fragment_vips(maps, fragment_vips(indexed)); !written) {
    return written;
  }
  for (const auto& removed : plan.removed_vips) {
    bpf_map_delete_elem(maps.vips, &removed.key);
    if (removed.id_retired) {
      bpf_map_delete_elem(maps.maglev_tables, &removed.vip_id);
      if (auto epoch = bump_epoch(maps, removed.vip_id); !epoch) {  // retires its flows
        return epoch.error();
      }
    }
  }
  if (bpf_map_update_elem(maps.vip_filter, &kZero, &plan.filter, BPF_ANY) != 0) {
    return system_error("Failed to update the VIP filter", errno);
  }
  return {};
}

// Deletes members [from, to) of `vip_id` from backend_state.
void trim_members(const MapFds& maps, uint32_t vip_id, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to; ++i) {
    const ringlb_member_key key{.vip_id = vip_id, .index = i};
    bpf_map_delete_elem(maps.backend_state, &key);
  }
}

Result<void> write_record(const MapFds& maps, uint32_t vip_id, const VipSpec& vip) {
  const uint32_t members = member_count(vip);
  for (uint32_t i = 0; i < members; ++i) {
    const ringlb_member m = member_record(vip.backends[i]);
    const ringlb_member_key key{.vip_id = vip_id, .index = i};
    if (bpf_map_update_elem(maps.backend_state, &key, &m, BPF_ANY) != 0) {
      return system_error(
          "Failed to record backend " + vip.backends[i].name + " of vip " + vip.name, errno);
    }
  }
  const ringlb_vip_state record = vip_record(vip, members);
  if (bpf_map_update_elem(maps.vip_state, &vip_id, &record, BPF_ANY) != 0) {
    return system_error("Failed to record vip " + vip.name, errno);
  }
  return {};
}

// 5. The record the CLI rebuilds from. Members that go are deleted before any is added,
// so backend_state never holds more than the larger of the old and the new members (a
// full map would stop the record half-written).
Result<void> write_records(const MapFds& maps, const StatePlan& plan) {
  for (const auto& forgotten : plan.forgotten_vips) {
    trim_members(maps, forgotten.vip_id, 0, forgotten.member_count);
    const ringlb_vip_state none{};
    if (bpf_map_update_elem(maps.vip_state, &forgotten.vip_id, &none, BPF_ANY) != 0) {
      return system_error(
          "Failed to clear the record of vip id " + std::to_string(forgotten.vip_id), errno);
    }
  }
  for (const auto& trim : plan.member_trims) {
    trim_members(maps, trim.vip_id, trim.from, trim.to);
  }
  for (const auto& p : plan.vips) {
    if (auto written = write_record(maps, p.info.vip_id, *p.spec); !written) {
      return written;
    }
  }
  return {};
}

// 6. steer mode: one cpumap queue per worker CPU.
Result<void> write_cpu_map(const MapFds& maps, uint32_t steer_workers) {
  const uint32_t cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());
  for (uint32_t worker = 0; worker < steer_workers && worker < cpus; ++worker) {
    bpf_cpumap_val value{};
    value.qsize = 2048;
    if (bpf_map_update_elem(maps.cpu_map, &worker, &value, BPF_ANY) != 0) {
      return system_error("Failed to add CPU " + std::to_string(worker) + " to the cpumap", errno);
    }
  }
  return {};
}

// Steps 0 to 6, in order; the first failure stops them.
Result<void> write_plan(const MapFds& maps, StatePlan& plan, const BackendFilter& eligible) {
  if (bpf_map_update_elem(maps.lb_state, &kZero, &plan.lb_state, BPF_ANY) != 0) {
    return system_error("Failed to update the lb_state map", errno);
  }
  if (auto written = write_backends(maps, plan); !written) {
    return written;
  }
  if (auto written = write_tables(maps, plan, eligible); !written) {
    return written;
  }
  if (auto written = write_vips(maps, plan); !written) {
    return written;
  }
  for (uint32_t id : plan.released_backend_ids) {  // 4. flows on them pick again
    const ringlb_backend none{};
    bpf_map_update_elem(maps.backends, &id, &none, BPF_ANY);
  }
  if (auto written = write_records(maps, plan); !written) {
    return written;
  }
  return write_cpu_map(maps, plan.lb_state.steer_workers);
}

}  // namespace

Result<void> install_vip_index(const MapFds& maps, const std::vector<ringlb_vip_slot>& index) {
  if (index.size() != RINGLB_VIP_INDEX_ENTRIES) {
    return Error{"a VIP index has " + std::to_string(RINGLB_VIP_INDEX_ENTRIES) + " entries, not " +
                     std::to_string(index.size()),
                 EINVAL};
  }
  const InnerArray array{.map_name = "vip_index", .kind = "VIP index", .what = "VIP index"};
  return swap_in_array(maps.vip_index, 0, array, sizeof(ringlb_vip_slot), index.data(),
                       RINGLB_VIP_INDEX_ENTRIES);
}

Result<void> apply_state(const MapFds& maps, const XdpState& state, const BackendFilter& eligible) {
  if (auto valid = validate_state(state); !valid) {
    return valid;
  }
  auto old = read_map_contents(maps);
  if (!old) {
    return old.error();
  }
  auto plan = plan_state(*old, state);
  if (!plan) {
    return plan.error();
  }
  if (auto written = write_plan(maps, *plan, eligible); !written) {
    return written;
  }
  resolve_next_hops(state.vips);
  return {};
}

}  // namespace ringlb::xdp
