// Forward VIPs as the pinned maps hold them (pinned_forward.h).
#include "ringlb/xdp/pinned_forward.h"

#include "ringlb/xdp/forward_table.h"

namespace ringlb::xdp {

Result<PinnedForwardView> PinnedForwardView::read(const MapFds& maps) {
  PinnedForwardView view;
  view.maps_ = maps;
  auto state = read_state(maps);
  if (!state) {
    return state.error();
  }
  view.state_ = std::move(*state);
  auto addresses = read_backend_addresses(maps);
  if (!addresses) {
    return addresses.error();
  }
  view.addresses_ = std::move(*addresses);
  return view;
}

Result<std::vector<uint32_t>> PinnedForwardView::table(const VipSpec& vip) const {
  auto vip_id = pinned_vip_id(maps_, vip);
  if (!vip_id) {
    return vip_id.error();
  }
  return read_maglev_table(maps_, *vip_id);
}

const BackendSpec* PinnedForwardView::member(const VipSpec& vip, uint32_t backend_id) const {
  const auto it = addresses_.find(backend_id);
  if (it == addresses_.end()) {
    return nullptr;
  }
  for (const auto& b : vip.backends) {
    if (b.address.ip == it->second) {
      return &b;
    }
  }
  return nullptr;
}

Result<std::map<std::string, uint32_t>> PinnedForwardView::slots(const VipSpec& vip) const {
  auto table = this->table(vip);
  if (!table) {
    return table.error();
  }
  std::map<std::string, uint32_t> out;
  for (uint32_t backend_id : *table) {
    if (const BackendSpec* b = member(vip, backend_id)) {
      ++out[b->name];
    }
  }
  return out;
}

Result<std::optional<uint32_t>> PinnedForwardView::backend_id(const VipSpec& vip,
                                                              const IpAddress& client) const {
  auto table = this->table(vip);
  if (!table) {
    return table.error();
  }
  // forward_backend indexes the table as the program does; here it holds backend ids.
  return forward_backend(vip, ForwardTable{.slots = std::move(*table)}, state_.hash_key, client);
}

}  // namespace ringlb::xdp
