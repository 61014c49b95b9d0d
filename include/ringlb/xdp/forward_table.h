// A forward-mode VIP's Maglev table, as the XDP maps hold it and as `ringlb which` and
// the tests predict it: the one builder every writer uses.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "ringlb/abi/hash.h"
#include "ringlb/config/config.h"

namespace ringlb::xdp {

// Whether a backend may take new flows beyond its config (state up, weight above zero):
// ringlbd passes its health checks' verdict. An empty filter admits every backend.
using BackendFilter = std::function<bool(const VipSpec& vip, const BackendSpec& backend)>;

// The eligible backends of a forward-mode VIP (state up, weight above zero, and
// `eligible` when given) in Maglev order, and the table: each entry an index into
// vip.backends. The XDP maps hold exactly this table (as backend ids); `ringlb which` and
// the tests use it to predict a backend.
struct ForwardTable {
  std::vector<uint32_t> slots;  // table_size entries, each an index into vip.backends
};
ForwardTable build_forward_table(const VipSpec& vip, uint32_t table_size,
                                 const BackendFilter& eligible = {});

// Which backend (index into vip.backends) the data plane picks for a new flow from
// `client`, or nullopt when the VIP has no eligible backend.
std::optional<uint32_t> forward_backend(const VipSpec& vip, const ForwardTable& table,
                                        const ringlb_hash_key& key, const IpAddress& client);

}  // namespace ringlb::xdp
