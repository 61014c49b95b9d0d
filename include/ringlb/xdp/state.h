// Maps are the state.
//
// Besides the maps the program reads, the program pins three user-space-only maps
// (lb_state, vip_state, backend_state in bpf/maps.h) that record what the others were
// built from: the table size and hash key, each VIP's name, listen key and mode, and each
// forward VIP's backends (name, address, weight, state) in order. Every writer goes
// through apply_state(): `ringlb attach -c` (XdpProgram::apply), the `ringlb xdp` edit
// commands (read_state, change, apply_state) and ringlbd on every applied change. Writers
// serialize on StateLock, so a CLI edit and a daemon apply never interleave.
//
// apply_state() is a plan and its writes: plan_state() (state_plan.h, pure) decides the
// ids, epochs and tables from what the maps hold; the writes then follow it in
// dependency order.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ringlb/abi/hash.h"
#include "ringlb/abi/xdp_abi.h"
#include "ringlb/config/config.h"
#include "ringlb/fd.h"
#include "ringlb/model/maglev.h"
#include "ringlb/result.h"
#include "ringlb/xdp/forward_table.h"

namespace ringlb::xdp {

// What the XDP maps describe.
struct XdpState {
  uint32_t maglev_table_size = kDefaultMaglevTableSize;
  ringlb_hash_key hash_key{};
  // Workers steer-mode VIPs are spread over; 0: proxy VIPs are not in the maps.
  uint32_t steer_workers = 0;
  // Forward VIPs (policy ip_hash, backends with port 0) and, when steered, proxy VIPs
  // (their backends are not recorded: the proxy balances them).
  std::vector<VipSpec> vips;
  // read_state: how many times the state was written (apply_state bumps it; its input's
  // value is ignored). A writer that remembers it knows whether another wrote since.
  uint32_t generation = 0;
};

// The state `config` asks for, in a program whose rodata has `table_size`, `hash_key` and
// `steer_workers` (proxy VIPs are left out when steer_workers is 0).
XdpState state_from_config(const Config& config, uint32_t table_size,
                           const ringlb_hash_key& hash_key, uint32_t steer_workers);

// The config's rules for a state, with the config's messages ("vip[web].backend[b1].weight:
// expected an integer in 0..10000, got 20000"), plus what the maps need: no two backends
// of a VIP on one address, and the capacities in xdp_abi.h. All errors at once.
Result<void> validate_state(const XdpState& state);

// The fds of the maps apply_state() reads and writes; not owned.
struct MapFds {
  int vips = -1;
  int frag_vips = -1;
  int flows = -1;
  int vip_index = -1;
  int vip_epochs = -1;
  int vip_filter = -1;
  int backends = -1;
  int maglev_tables = -1;
  int cpu_map = -1;
  int lb_state = -1;
  int vip_state = -1;
  int backend_state = -1;
};

// The maps a loaded program pinned under a pin root, opened by path (needs CAP_BPF or
// root). Opening fails with a message that says to run `ringlb attach` when there is no
// program, or when its pins predate the state maps.
class PinnedMaps {
 public:
  static Result<PinnedMaps> open(const std::string& pin_root);
  const MapFds& fds() const { return fds_; }

 private:
  PinnedMaps() = default;
  std::vector<UniqueFd> owned_;
  MapFds fds_;
};

// An flock(2) on the pin directory: exclusive for writers, shared for readers that want
// a consistent view (a reader without it may see an edit half-written to the state maps,
// never to the maps the program reads).
class StateLock {
 public:
  static Result<StateLock> take(const std::string& pin_root, bool exclusive);

 private:
  StateLock() = default;
  UniqueFd fd_;
};

// Reads the state back from the maps. VIPs come in vip id order.
Result<XdpState> read_state(const MapFds& maps);

// Makes the maps describe `state` (validated first: on a validation error nothing is
// written). Each forward VIP's table is built with build_forward_table(vip, size, eligible)
// in a new inner map and swapped in with one update, so the program sees the old table or
// the new one, never a mix. VIP and backend ids are kept for keys and addresses already in
// the maps (flows keep their backend); a VIP whose mode changed, or that is removed, gets
// a new epoch (its flows are retired). Asks the kernel to resolve every backend's next hop.
// Precondition: state.maglev_table_size is the loaded program's table size.
Result<void> apply_state(const MapFds& maps, const XdpState& state,
                         const BackendFilter& eligible = {});

// The VIP index (struct ringlb_vip_slot) the program looks VIPs up in: the entries of
// `vips` placed by linear probing from ringlb_vip_index_slot() within
// RINGLB_VIP_INDEX_PROBES slots, in the given order, and last the header entry counting
// the VIPs that did not fit (the program finds those in the `vips` map).
// RINGLB_VIP_INDEX_ENTRIES entries. apply_state() installs it as a new inner map.
std::vector<ringlb_vip_slot> build_vip_index(
    const std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>>& vips);

// The entries of `frag_vips` for `vips` (see xdp_abi.h): for each address, protocol and
// family that exactly one VIP has, and that one in forward mode, the key with port 0 and
// that VIP's info.
std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> fragment_vips(
    const std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>>& vips);

// Empties every entry of the flow table `flows_fd` bound to `vip_id`, on every CPU.
// apply_state() does it when a VIP id's epoch comes round to bits its entries could
// still hold (every 2^RINGLB_FLOW_EPOCH_BITS bumps), so no entry outlives its epoch. An
// entry the program writes into a bucket while it is being rewritten may be lost; its
// flow then goes by the Maglev table.
Result<void> clear_vip_flows(int flows_fd, uint32_t vip_id);

// The VIP index the program uses now, or an error.
Result<std::vector<ringlb_vip_slot>> read_vip_index(const MapFds& maps);

// Swaps in `index` (RINGLB_VIP_INDEX_ENTRIES entries, as build_vip_index gives) as the
// program's VIP index, filled in a new inner map first.
Result<void> install_vip_index(const MapFds& maps, const std::vector<ringlb_vip_slot>& index);

// The vip id the maps give `vip` (by its listen key), or an ENOENT error.
Result<uint32_t> pinned_vip_id(const MapFds& maps, const VipSpec& vip);

// The Maglev table the program uses for `vip_id`: slot -> backend id. Empty when the VIP
// has no table (no eligible backend).
Result<std::vector<uint32_t>> read_maglev_table(const MapFds& maps, uint32_t vip_id);

// Backend id -> address, for every backend in the maps.
Result<std::map<uint32_t, IpAddress>> read_backend_addresses(const MapFds& maps);

}  // namespace ringlb::xdp
