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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/config.h"
#include "ringlb/result.h"
#include "ringlb/xdp_abi.h"

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
  uint32_t flow_entries = RINGLB_DEFAULT_FLOW_ENTRIES;
  // Outer source addresses of encapsulated packets, network order (IPv4 in addr[0]).
  uint32_t source_v4 = 0;
  std::array<uint32_t, 4> source_v6{};
};

// The options a config asks for: hash key, table size, steer workers (daemon.workers,
// 0 meaning one per online CPU, when [xdp] steer is on). The pin root and the encap
// source addresses are the caller's.
LoadOptions load_options(const Config& config);

// Fills options.source_v4 / source_v6 from the first IPv4 and the first global IPv6
// address of `interface`.
Result<void> set_sources_from_interface(LoadOptions& options, const std::string& interface);

// The interface index of `name`, or an error naming it.
Result<int> interface_index(const std::string& name);

// The eligible backends of a forward-mode VIP (state up, weight above zero) in Maglev
// order, and the table: each entry an index into vip.backends. The XDP maps hold exactly
// this table (as backend ids); `ringlb which` and the tests use it to predict a backend.
struct ForwardTable {
  std::vector<uint32_t> slots;  // table_size entries, each an index into vip.backends
};
ForwardTable build_forward_table(const VipSpec& vip, uint32_t table_size);

// Which backend (index into vip.backends) the data plane picks for a new flow from
// `client`, or nullopt when the VIP has no eligible backend.
std::optional<uint32_t> forward_backend(const VipSpec& vip, const ForwardTable& table,
                                        const ringlb_hash_key& key, const IpAddress& client);

struct SkeletonDeleter {
  void operator()(ringlb_xdp* skel) const;
  void operator()(ringlb_decap* skel) const;
};

// The data-plane program (ringlb_xdp and ringlb_reuseport) and its maps.
class XdpProgram {
 public:
  // Opens, configures and loads the program; reuses pinned maps under options.pin_root.
  static Result<XdpProgram> load(const LoadOptions& options);

  // Makes the maps describe `config`: VIPs, backends, Maglev tables and the cpumap.
  // Each VIP's table is built in a new inner map and swapped in with one map update, so
  // the program sees the old table or the new one, never a mix. Backend and VIP ids are
  // kept for addresses that were already in the maps (flows keep their backend).
  // Finally it asks the kernel to resolve every backend's next hop (bpf_fib_lookup needs
  // a neighbour entry; without one the program drops with DROP_NO_NEIGH).
  // Precondition: config.daemon.maglev_table_size equals the loaded table size.
  Result<void> apply(const Config& config);

  // Attaches ringlb_xdp to the interface (replacing an attached program).
  Result<void> attach(int ifindex, XdpAttach mode) const;

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

// The backend-side decapsulation program.
class DecapProgram {
 public:
  static Result<DecapProgram> load();
  Result<void> attach(int ifindex, XdpAttach mode) const;
  int fd() const;
  // The fd of the per-CPU decap_stats map (enum ringlb_decap_verdict).
  int stats_fd() const;

 private:
  DecapProgram() = default;
  std::unique_ptr<ringlb_decap, SkeletonDeleter> skel_;
};

// Sends an empty datagram to each forward-mode backend so that the kernel resolves the
// next hop's MAC (apply() does this; a daemon repeats it now and then).
void resolve_next_hops(const Config& config);

// Detaches whatever XDP program is attached to the interface (any mode). Detaching
// from an interface with no program is not an error.
Result<void> detach(int ifindex);

// Per-verdict counters summed over CPUs (index: enum ringlb_verdict).
Result<std::vector<ringlb_counter>> read_counters(int map_fd, uint32_t entries);

// The name of a verdict counter ("tx_forward"), for stats output.
std::string_view verdict_name(uint32_t verdict);

}  // namespace ringlb::xdp
