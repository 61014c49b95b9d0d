// A forward VIP's Maglev table (forward_table.h): the model's Maglev over the eligible
// backends, and the slot the data plane computes for a client.
#include "ringlb/xdp/forward_table.h"

#include "ringlb/model/client_hash.h"
#include "ringlb/model/maglev.h"

namespace ringlb::xdp {

ForwardTable build_forward_table(const VipSpec& vip, uint32_t table_size,
                                 const BackendFilter& eligible) {
  ForwardTable table;
  table.slots = vip_maglev_table(
      static_cast<uint32_t>(vip.backends.size()),
      [&](uint32_t i) {
        const BackendSpec& b = vip.backends[i];
        return b.in_rotation() && (!eligible || eligible(vip, b)) ? &b : nullptr;
      },
      table_size);
  return table;
}

std::optional<uint32_t> forward_backend(const VipSpec& /*vip*/, const ForwardTable& table,
                                        const ringlb_hash_key& key, const IpAddress& client) {
  if (table.slots.empty()) {
    return std::nullopt;
  }
  return table.slots[client_slot(key, client, static_cast<uint32_t>(table.slots.size()))];
}

}  // namespace ringlb::xdp
