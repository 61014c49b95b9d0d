// The pure half of apply_state() (state.h): from what the maps hold and the state they
// are to describe, which VIP and backend ids, epochs, records and tables to write. No
// map is touched, so the plan is tested without root; apply_state() reads the maps into
// a MapContents, plans, then writes what the plan says in dependency order.
//
// The rules: a VIP keeps its id while its key (address, port, protocol) stays, a backend
// its id while its address does, so established flows keep their backend. New VIPs and
// addresses take the lowest free ids. A new VIP, or one whose mode changed, gets a new
// epoch (flows recorded under its id are retired); so does the id of a removed VIP that
// no VIP takes over.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "ringlb/abi/xdp_abi.h"
#include "ringlb/config/config.h"
#include "ringlb/result.h"
#include "ringlb/xdp/forward_table.h"
#include "ringlb/xdp/state.h"

namespace ringlb::xdp {

// A backend address as the backends map holds it: family and address words (network
// order, IPv4 in the first).
using AddressKey = std::pair<uint32_t, std::array<uint32_t, 4>>;
AddressKey address_key(const IpAddress& address);

// The vips map's key of `vip`: listen address, port (network order), protocol, family.
ringlb_vip_key vip_key(const VipSpec& vip);

// What the maps hold before an apply, as far as the plan needs it.
struct MapContents {
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> vips;  // the vips map
  std::map<AddressKey, uint32_t> backends;     // the backends map: address -> backend id
  std::map<uint32_t, uint32_t> member_counts;  // vip_state: vip id -> members recorded
  uint32_t generation = 0;                     // lb_state's; 0 when it records no state
};

// A VIP of the new state and its entry in the vips map.
struct PlannedVip {
  const VipSpec* spec = nullptr;  // into the XdpState the plan was made from
  ringlb_vip_key key{};
  ringlb_vip_info info{};  // vip id and mode; and the epoch, unless new_epoch
  bool new_epoch = false;  // its epoch moves on when written (info.epoch is then unset)
};

// A VIP of the maps whose key the new state does not have: its vips entry goes.
struct RemovedVip {
  ringlb_vip_key key{};
  uint32_t vip_id = 0;
  bool id_retired = false;  // no planned VIP has the id: its table goes, its epoch moves on
};

// A vip id whose record (vip_state and its members) goes: no planned VIP has it.
struct ForgottenVip {
  uint32_t vip_id = 0;
  uint32_t member_count = 0;  // members recorded under it
};

// Members [from, to) of `vip_id` in backend_state: recorded before, gone now.
struct MemberTrim {
  uint32_t vip_id = 0;
  uint32_t from = 0;
  uint32_t to = 0;
};

struct StatePlan {
  ringlb_lb_state lb_state{};    // lb_state's new value: the state's rodata, generation + 1
  std::vector<PlannedVip> vips;  // in the state's order
  // The address of every backend of a forward VIP that is not down -> its backend id.
  std::map<AddressKey, uint32_t> backend_ids;
  std::vector<RemovedVip> removed_vips;        // in the maps' order
  std::vector<uint32_t> released_backend_ids;  // ids no address keeps: their entry is cleared
  // The record: forgotten ids first (all their members), then the kept VIPs' members past
  // their new count, before any member is written, so that backend_state never holds more
  // than the larger of the old and the new members.
  std::vector<ForgottenVip> forgotten_vips;
  std::vector<MemberTrim> member_trims;
  ringlb_vip_filter filter{};  // the address pre-filter of the planned VIPs alone
};

// The plan that makes maps holding `old` describe `state`. Fails (EINVAL) when the ids
// run out: more VIPs or distinct backend addresses than the maps hold. Precondition:
// validate_state(state) passed. The plan points into `state`, which must outlive it.
Result<StatePlan> plan_state(const MapContents& old, const XdpState& state);

// The Maglev table of planned forward VIP `vip` as its inner map holds it: slot ->
// backend id, from build_forward_table(*vip.spec, plan's table size, eligible). Empty when
// no backend is eligible: the VIP then has no table.
std::vector<uint32_t> planned_table(const StatePlan& plan, const PlannedVip& vip,
                                    const BackendFilter& eligible);

// The members a VIP records: a forward VIP's backends; a steered proxy VIP has none.
uint32_t member_count(const VipSpec& vip);

}  // namespace ringlb::xdp
