// The model's values as the state maps record them, and back (private to src/xdp). The
// keys the program reads (vip_key, address_key) are public, in state_plan.h.
#pragma once

#include <cstdint>
#include <string>

#include "ringlb/abi/xdp_abi.h"
#include "ringlb/config/config.h"

namespace ringlb::xdp {

// An address of the maps (family RINGLB_FAMILY_*, words in network order).
IpAddress ip_from(const uint32_t addr[4], uint32_t family);

// A backend as backend_state records it, and back.
ringlb_member member_record(const BackendSpec& backend);
BackendSpec backend_from(const ringlb_member& member);

// A VIP as vip_state records it (name, key, mode, member count), and back (without its
// members).
ringlb_vip_state vip_record(const VipSpec& vip, uint32_t member_count);
VipSpec vip_from(const ringlb_vip_state& record);

// RINGLB_MODE_FORWARD or RINGLB_MODE_STEER.
uint32_t vip_mode(const VipSpec& vip);

}  // namespace ringlb::xdp
