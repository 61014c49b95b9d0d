// xdp/: what the XDP plane shows, read from the interface and the pinned maps on every
// access, so it is right whether the program was attached before or after the daemon
// started, and whoever wrote the maps (ringlbd, `ringlb attach -c`, `ringlb xdp`).
#include <bpf/bpf.h>
#include <net/if.h>

#include <map>

#include "node.h"
#include "ringlb/fd.h"
#include "ringlb/model/fields.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::control {

Result<std::optional<std::vector<telemetry::VerdictRow>>> read_verdicts(
    const std::string& pin_root) {
  UniqueFd map(bpf_obj_get((pin_root + "/verdict_stats").c_str()));
  if (!map.valid()) {
    return std::optional<std::vector<telemetry::VerdictRow>>();  // no program pinned here
  }
  auto counters = xdp::read_counters(map.get(), xdp::entries_of(map.get(), RINGLB_V_MAX));
  if (!counters) {
    return counters.error();
  }
  std::vector<telemetry::VerdictRow> rows;
  for (uint32_t v = 0; v < counters->size(); ++v) {
    rows.push_back(telemetry::VerdictRow{
        .verdict = std::string(xdp::verdict_name(v)),
        .counters = {.packets = (*counters)[v].packets, .bytes = (*counters)[v].bytes}});
  }
  return std::optional(std::move(rows));
}

std::vector<telemetry::FlowEventRow> read_flow_events(const std::string& pin_root) {
  std::vector<telemetry::FlowEventRow> rows;
  UniqueFd map(bpf_obj_get((pin_root + "/flow_stats").c_str()));
  auto counts = map.valid() ? xdp::read_event_counts(map.get(), RINGLB_FE_MAX)
                            : Result<std::vector<uint64_t>>(Error{"not pinned"});
  if (counts) {
    for (uint32_t e = 0; e < counts->size(); ++e) {
      rows.push_back({.event = std::string(xdp::flow_event_name(e)), .count = (*counts)[e]});
    }
  }
  return rows;
}

namespace {

// ---- interface, pin_path, program ----

Result<std::string> show_interface(const Ctx& ctx, const Node&) {
  const auto config = ctx.tree.runtime.config();
  return line(config->xdp.enabled ? config->xdp.interface : std::string("none"));
}

Result<std::string> show_pin_path(const Ctx& ctx, const Node&) {
  return line(ctx.tree.pin_root);
}

Result<std::string> show_program(const Ctx& ctx, const Node&) {
  const auto config = ctx.tree.runtime.config();
  const unsigned index = config->xdp.enabled ? if_nametoindex(config->xdp.interface.c_str()) : 0;
  if (index == 0) {
    return line("none");
  }
  const auto attached = xdp::attached_program(static_cast<int>(index));
  if (!attached || !*attached) {
    return line("none");
  }
  const auto& program = **attached;
  // Offload counts as native here, as it always did: the program runs before the stack.
  const bool generic = program.mode == xdp::XdpHookMode::generic;
  return "id " + std::to_string(program.id) + (generic ? " generic\n" : " native\n");
}

// ---- verdicts/<verdict> ----

Result<std::string> show_verdict(const Ctx& ctx, const Node&) {
  auto rows = read_verdicts(ctx.tree.pin_root);
  if (!rows) {
    return rows.error();
  }
  if (!*rows) {
    return line("unavailable");  // no program has pinned its maps here
  }
  for (const auto& row : **rows) {
    if (row.verdict == ctx.verdict) {
      return line(row.counters.packets);
    }
  }
  return not_found(ctx.verdict);
}

Result<std::vector<std::string>> verdict_names(const Ctx&) {
  std::vector<std::string> names;
  for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
    names.emplace_back(xdp::verdict_name(v));
  }
  return names;
}

Result<const Node*> enter_verdict(Ctx& ctx, const std::string& name) {
  static const Node verdict{.name = "", .show = show_verdict};
  for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
    if (xdp::verdict_name(v) == name) {
      ctx.verdict = name;
      return &verdict;
    }
  }
  return nullptr;
}

// ---- vips/<vip>/...: the VIPs and backends the pinned maps hold ----

// A VIP of the state maps; `slots`: backend name -> the Maglev slots it owns now.
struct PinnedVip {
  VipSpec spec;
  std::map<std::string, uint64_t> slots;
};

// The slots of each backend of forward VIP `vip`, from the table the program reads.
Result<void> count_slots(const xdp::MapFds& fds, const std::map<uint32_t, IpAddress>& addresses,
                         PinnedVip& vip) {
  auto id = xdp::pinned_vip_id(fds, vip.spec);
  auto table = id ? xdp::read_maglev_table(fds, *id) : Result<std::vector<uint32_t>>(id.error());
  if (!table) {
    return table.error();
  }
  for (uint32_t backend_id : *table) {
    const auto it = addresses.find(backend_id);
    for (const auto& b : vip.spec.backends) {
      if (it != addresses.end() && b.address.ip == it->second) {
        ++vip.slots[b.name];
      }
    }
  }
  return {};
}

Result<std::vector<PinnedVip>> pinned_vips(const std::string& pin_root, bool with_slots) {
  auto maps = xdp::PinnedMaps::open(pin_root);
  if (!maps) {
    return std::vector<PinnedVip>{};  // no program: no VIPs
  }
  auto state = xdp::read_state(maps->fds());
  if (!state) {
    return std::vector<PinnedVip>{};
  }
  std::map<uint32_t, IpAddress> addresses;
  if (with_slots) {
    auto read = xdp::read_backend_addresses(maps->fds());
    if (!read) {
      return read.error();
    }
    addresses = std::move(*read);
  }
  std::vector<PinnedVip> out;
  for (auto& spec : state->vips) {
    PinnedVip vip{.spec = std::move(spec), .slots = {}};
    if (with_slots && vip.spec.mode == Mode::forward) {
      if (auto counted = count_slots(maps->fds(), addresses, vip); !counted) {
        return counted.error();
      }
    }
    out.push_back(std::move(vip));
  }
  return out;
}

const PinnedVip* find_pinned(const std::vector<PinnedVip>& vips, std::string_view name) {
  for (const auto& v : vips) {
    if (v.spec.name == name) {
      return &v;
    }
  }
  return nullptr;
}

Result<std::string> show_pinned_mode(const Ctx& ctx, const Node&) {
  return line(ctx.spec->mode == Mode::forward ? "forward" : "steer");
}

Result<std::string> show_slots(const Ctx& ctx, const Node&) {
  auto vips = pinned_vips(ctx.tree.pin_root, true);
  if (!vips) {
    return vips.error();
  }
  const PinnedVip* vip = find_pinned(*vips, ctx.vip);
  if (vip == nullptr) {
    return not_found(ctx.vip);
  }
  const auto it = vip->slots.find(ctx.backend);
  return line(it != vip->slots.end() ? it->second : 0);
}

Result<std::vector<std::string>> pinned_backend_names(const Ctx& ctx) {
  std::vector<std::string> names;
  for (const auto& b : ctx.spec->backends) {
    names.push_back(b.name);
  }
  return names;
}

// weight and state are written as vips/<vip>/backends/<b>/...: a change of the daemon's
// config, which the publish hook writes to the maps (a VIP only `ringlb xdp` knows:
// ENOENT).
Result<const Node*> enter_pinned_backend(Ctx& ctx, const std::string& name) {
  static const Dir dir{.nodes = {{.name = "address", .show = show_address},
                                 {.name = "slots", .show = show_slots},
                                 {.name = "state", .show = show_state, .store = store_state},
                                 {.name = "weight", .show = show_weight, .store = store_weight}}};
  static const Node backend{.name = "", .dir = &dir};
  ctx.backend = name;
  ctx.backend_spec = find_backend(*ctx.spec, name);
  return ctx.backend_spec != nullptr ? &backend : nullptr;
}

Result<std::vector<std::string>> pinned_vip_names(const Ctx& ctx) {
  auto vips = pinned_vips(ctx.tree.pin_root, false);
  if (!vips) {
    return vips.error();
  }
  std::vector<std::string> names;
  for (const auto& v : *vips) {
    names.push_back(v.spec.name);
  }
  return names;
}

Result<const Node*> enter_pinned_vip(Ctx& ctx, const std::string& name) {
  static const Dir backends{
      .nodes = {}, .names = pinned_backend_names, .enter = enter_pinned_backend};
  static const Dir dir{.nodes = {{.name = "listen", .show = show_listen},
                                 {.name = "mode", .show = show_pinned_mode},
                                 {.name = "protocol", .show = show_protocol},
                                 {.name = "backends", .dir = &backends}}};
  static const Node vip{.name = "", .dir = &dir};
  auto vips = pinned_vips(ctx.tree.pin_root, false);
  if (!vips) {
    return vips.error();
  }
  const PinnedVip* found = find_pinned(*vips, name);
  if (found == nullptr) {
    return nullptr;
  }
  ctx.vip = name;
  ctx.spec = &ctx.spec_copy.emplace(found->spec);
  return &vip;
}

}  // namespace

const Dir& xdp_dir() {
  static const Dir verdicts{.nodes = {}, .names = verdict_names, .enter = enter_verdict};
  static const Dir vips{.nodes = {}, .names = pinned_vip_names, .enter = enter_pinned_vip};
  static const Dir dir{.nodes = {{.name = "interface", .show = show_interface},
                                 {.name = "pin_path", .show = show_pin_path},
                                 {.name = "program", .show = show_program},
                                 {.name = "verdicts", .dir = &verdicts},
                                 {.name = "vips", .dir = &vips}}};
  return dir;
}

}  // namespace ringlb::control
