// The C++ side's checks of the ABI shared with the BPF programs
// (include/ringlb/abi/xdp_abi.h): sizes and offsets of every map key and value, and the
// constants the model repeats. Nothing here runs; it only has to compile.
#include "ringlb/abi/xdp_abi.h"

#include <cstddef>

#include "ringlb/config/config.h"
#include "ringlb/model/model.h"

namespace ringlb::xdp {

// The maps the program reads.
static_assert(sizeof(ringlb_vip_key) == 20);
static_assert(offsetof(ringlb_vip_key, port) == 16);
static_assert(sizeof(ringlb_vip_info) == 12);
static_assert(sizeof(ringlb_vip_slot) == 32);
static_assert(sizeof(ringlb_backend) == 20);
static_assert(sizeof(ringlb_flow_key) == 40);
static_assert(offsetof(ringlb_flow_key, sport) == 32);
static_assert(sizeof(ringlb_counter) == 16);
static_assert(sizeof(ringlb_vip_filter) == RINGLB_VIP_FILTER_BITS / 8);

// The state maps (user space alone reads them).
static_assert(sizeof(ringlb_lb_state) == 32);
static_assert(sizeof(ringlb_vip_state) == RINGLB_NAME_LEN + 28);
static_assert(sizeof(ringlb_member_key) == 8);
static_assert(sizeof(ringlb_member) == RINGLB_NAME_LEN + 24);

// What the config and the model say of the same limits.
static_assert(kMaxNameLength == RINGLB_NAME_LEN);
static_assert(kDefaultFlowEntries == RINGLB_DEFAULT_FLOW_ENTRIES);
static_assert(kMinFlowEntries >= RINGLB_FLOW_WAYS && kMinFlowEntries % RINGLB_FLOW_WAYS == 0);

// The flow table: one cache line per bucket, a binding's fields wide enough for every id.
static_assert(sizeof(ringlb_flow_entry) == 16);
static_assert(sizeof(ringlb_flow_bucket) == 64);
static_assert(RINGLB_MAX_BACKENDS <= 1u << RINGLB_FLOW_BACKEND_BITS);
static_assert(RINGLB_MAX_VIPS <= 1u << RINGLB_FLOW_VIP_BITS);
static_assert(RINGLB_FLOW_BACKEND_BITS + RINGLB_FLOW_VIP_BITS + RINGLB_FLOW_EPOCH_BITS == 32);

}  // namespace ringlb::xdp
