// Forward VIPs as the pinned maps hold them, for the tools: the recorded state, and per
// VIP the Maglev table the program reads, its backend ids named by the record. Reads
// what the program uses, not a prediction (build_forward_table predicts).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/result.h"
#include "ringlb/xdp/state.h"

namespace ringlb::xdp {

class PinnedForwardView {
 public:
  // Reads the state and the backend addresses. Take a shared StateLock first for a
  // consistent view.
  static Result<PinnedForwardView> read(const MapFds& maps);

  const XdpState& state() const { return state_; }

  // The table the program reads for `vip` (a forward VIP of state()): slot -> backend id.
  // Empty when the VIP has no eligible backend.
  Result<std::vector<uint32_t>> table(const VipSpec& vip) const;

  // The backend of `vip` at the address of `backend_id`, or nullptr.
  const BackendSpec* member(const VipSpec& vip, uint32_t backend_id) const;

  // How many slots of `vip`'s table each of its backends holds, by backend name (a
  // backend with none is absent).
  Result<std::map<std::string, uint32_t>> slots(const VipSpec& vip) const;

  // The backend id the program picks for a new flow from `client` to `vip` (the slot it
  // computes, looked up in the table it reads), or nullopt when the VIP has no table.
  Result<std::optional<uint32_t>> backend_id(const VipSpec& vip, const IpAddress& client) const;

 private:
  PinnedForwardView() = default;
  MapFds maps_;
  XdpState state_;
  std::map<uint32_t, IpAddress> addresses_;  // backend id -> address
};

}  // namespace ringlb::xdp
