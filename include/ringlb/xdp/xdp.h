// The XDP loader: loads ringlb's BPF programs, pins their maps, fills them from a
// Config and attaches them to interfaces.
//
// Life cycle (libbpf-bootstrap's): open -> set rodata and map sizes -> load -> fill maps
// -> attach. XdpProgram owns the skeleton (RAII); the attachment itself is a netlink
// attachment that outlives the process, so restarting the loader or the daemon leaves
// packet-level service running. The maps the data plane needs across restarts are
// pinned by name under `pin_root` (default /sys/fs/bpf/ringlb); loading again with the
// same pin root reuses them, so the flow table and counters survive a reload.
//
// Errors name the operation and the errno: "Failed to attach XDP program to eth0:
// Device or resource busy". A program the verifier rejects reports the verifier log.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/abi/xdp_abi.h"
#include "ringlb/config/config.h"
#include "ringlb/fd.h"
#include "ringlb/result.h"

struct ringlb_xdp;
struct ringlb_decap;

namespace ringlb::xdp {

inline constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/ringlb";

struct LoadOptions {
  // Where maps are pinned (a directory on a bpffs mount, created if missing). Empty:
  // nothing is pinned (tests, benchmarks).
  std::string pin_root = kDefaultPinRoot;
  ringlb_hash_key hash_key{};
  uint32_t maglev_table_size = 65537;
  // Workers that steer-mode VIPs are spread over (worker i on CPU i); 0: steer off.
  uint32_t steer_workers = 0;
  uint32_t flow_entries = RINGLB_DEFAULT_FLOW_ENTRIES;  // per CPU, rounded down to a power of 2
  // Outer source addresses of encapsulated packets, network order (IPv4 in addr[0]).
  uint32_t source_v4 = 0;
  std::array<uint32_t, 4> source_v6{};
};

// The options a config asks for: hash key, table size, flow entries, steer workers
// (daemon.workers, 0 meaning one per online CPU, when [xdp] steer is on). The pin root and
// the encap source addresses are the caller's.
LoadOptions load_options(const Config& config);

// Fills options.source_v4 / source_v6 from the first IPv4 and the first global IPv6
// address of `interface`.
Result<void> set_sources_from_interface(LoadOptions& options, const std::string& interface);

// The interface index of `name`, or an error naming it.
Result<int> interface_index(const std::string& name);

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

// ---- Maps are the state ------------------------------------------------------------
//
// Besides the maps the program reads, the program pins three user-space-only maps
// (lb_state, vip_state, backend_state in bpf/maps.h) that record what the others were
// built from: the table size and hash key, each VIP's name, listen key and mode, and each
// forward VIP's backends (name, address, weight, state) in order. Every writer goes
// through apply_state(): `ringlb attach -c` (XdpProgram::apply), the `ringlb xdp` edit
// commands (read_state, change, apply_state) and ringlbd on every applied change. Writers
// serialize on StateLock, so a CLI edit and a daemon apply never interleave.

// What the XDP maps describe.
struct XdpState {
  uint32_t maglev_table_size = 65537;
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

struct SkeletonDeleter {
  void operator()(ringlb_xdp* skel) const;
  void operator()(ringlb_decap* skel) const;
};

// The data-plane program (ringlb_xdp and ringlb_reuseport) and its maps.
class XdpProgram {
 public:
  // Opens, configures and loads the program; reuses pinned maps under options.pin_root.
  static Result<XdpProgram> load(const LoadOptions& options);

  // Makes the maps (the state maps included) describe `config`: apply_state() with
  // state_from_config() under the pin root's StateLock. Fails, writing nothing, when
  // config.daemon.maglev_table_size is not the loaded table size.
  Result<void> apply(const Config& config);

  // Attaches ringlb_xdp to the interface. An attached ringlb_xdp is replaced atomically
  // (in the same mode: no packet sees no program). Another tool's program is replaced
  // only with `replace_other`; otherwise the attach fails with EBUSY, naming it.
  Result<void> attach(int ifindex, XdpAttach mode, bool replace_other = false) const;

  // The fds of the maps apply_state() writes.
  MapFds map_fds() const;

  int xdp_fd() const;
  int reuseport_fd() const;
  // The fd of the map called `name` (e.g. "flows"), or -1.
  int map_fd(std::string_view name) const;
  const LoadOptions& options() const { return options_; }

 private:
  XdpProgram() = default;
  std::unique_ptr<ringlb_xdp, SkeletonDeleter> skel_;
  LoadOptions options_;
};

// The backend-side decapsulation program (bpf/decap.bpf.c). One object, two entry points
// that share the parsing and the decap_stats counters:
//   - ringlb_decap, on the XDP hook (native, or generic on any device);
//   - ringlb_decap_tc, a direct-action cls_bpf filter on the clsact ingress hook, for
//     devices without native XDP or whose XDP hook another program owns. It sees packets
//     after the kernel took the VLAN tag out of the frame, so a tag left in the frame
//     (QinQ's inner tag) is passed untouched (RINGLB_DV_PASS_UNSUPPORTED).
// Either attachment outlives the process, as the balancer's does.
class DecapProgram {
 public:
  static Result<DecapProgram> load();
  // Attaches ringlb_decap to the XDP hook, as XdpProgram::attach does.
  Result<void> attach(int ifindex, XdpAttach mode, bool replace_other = false) const;
  // Attaches ringlb_decap_tc to the clsact ingress hook, creating the clsact qdisc when
  // the device has none, as the filter kDecapTcHandle / kDecapTcPriority. Attaching
  // again replaces ringlb's filter. Fails with EBUSY, changing nothing, when another
  // program holds that handle and priority; a qdisc it created is removed on failure.
  Result<void> attach_tc(int ifindex) const;
  int fd() const;     // the XDP entry point
  int tc_fd() const;  // the tc entry point
  // The fd of the per-CPU decap_stats map (enum ringlb_decap_verdict).
  int stats_fd() const;

 private:
  DecapProgram() = default;
  std::unique_ptr<ringlb_decap, SkeletonDeleter> skel_;
};

// The handle and priority of ringlb's decap filter on clsact ingress ("rl"). Filters of
// other tools at other handles or priorities are never touched.
inline constexpr uint32_t kDecapTcHandle = 0x726c;
inline constexpr uint32_t kDecapTcPriority = 0x726c;

// Removes ringlb's decap filter from the interface's clsact ingress hook, then the
// clsact qdisc when no filter is left on it (ingress or egress). Returns false, changing
// nothing, when the interface has no ringlb decap filter (another program's filter at
// ringlb's handle and priority is left alone).
Result<bool> detach_decap_tc(int ifindex);

// Detaches the interface's XDP program if it is ringlb's decap program (any mode).
// Returns false, changing nothing, when no program or another one is attached.
Result<bool> detach_decap_xdp(int ifindex);

// Whether a program named `name` may be attached to the interface's XDP hook: yes when
// the hook is free, holds a program of that name (ringlb's own, from an earlier attach)
// or `replace_other` is set; otherwise EBUSY, naming the other program and how to go on.
// attach() checks it; ringlb attach checks it first too, before it changes any map.
Result<void> check_attachable(int ifindex, std::string_view name, bool replace_other);

// Sends an empty datagram to each forward-mode backend so that the kernel resolves the
// next hop's MAC (apply() does this; a daemon repeats it now and then).
void resolve_next_hops(const Config& config);
void resolve_next_hops(const std::vector<VipSpec>& vips);

// Detaches whatever XDP program is attached to the interface (any mode). Detaching
// from an interface with no program is not an error.
Result<void> detach(int ifindex);

// Per-verdict counters summed over CPUs (index: enum ringlb_verdict).
Result<std::vector<ringlb_counter>> read_counters(int map_fd, uint32_t entries);

// The name of a verdict counter ("tx_forward"), for stats output.
std::string_view verdict_name(uint32_t verdict);

}  // namespace ringlb::xdp
