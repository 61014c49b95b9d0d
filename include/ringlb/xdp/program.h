// The data-plane program (bpf/ringlb.bpf.c): load options, the skeleton's life cycle and
// its attachment.
//
// Life cycle (libbpf-bootstrap's): open -> set rodata and map sizes -> load -> fill maps
// -> attach. XdpProgram owns the skeleton (RAII); the attachment itself is a netlink
// attachment that outlives the process, so restarting the loader or the daemon leaves
// packet-level service running. The maps the data plane needs across restarts are
// pinned by name under `pin_root` (default /sys/fs/bpf/ringlb; the list of pins is the
// skeleton's, see pins.h); loading again with the same pin root reuses them, so the flow
// table and counters survive a reload.
//
// Errors name the operation and the errno: "Failed to attach XDP program to eth0:
// Device or resource busy". A program the verifier rejects reports the verifier log.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ringlb/abi/xdp_abi.h"
#include "ringlb/config/config.h"
#include "ringlb/model/maglev.h"
#include "ringlb/result.h"
#include "ringlb/xdp/state.h"

struct ringlb_xdp;
struct ringlb_decap;
struct ringlb_reuseport;

namespace ringlb::xdp {

inline constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/ringlb";

// The name the kernel gives the data plane (bpf_prog_info.name): what check_attachable()
// takes for ringlb's own program.
inline constexpr std::string_view kXdpProgramName = "ringlb_xdp";

struct LoadOptions {
  // Where maps are pinned (a directory on a bpffs mount, created if missing). Empty:
  // nothing is pinned (tests, benchmarks).
  std::string pin_root = kDefaultPinRoot;
  ringlb_hash_key hash_key{};
  uint32_t maglev_table_size = kDefaultMaglevTableSize;
  // Workers that steer-mode VIPs are spread over (worker i on CPU i); 0: steer off.
  uint32_t steer_workers = 0;
  uint32_t flow_entries = RINGLB_DEFAULT_FLOW_ENTRIES;  // per CPU, rounded down to a power of 2
  // An idle established flow may give up its entry after this (xdp.flow_idle_timeout_ms).
  uint32_t flow_idle_ms = kDefaultFlowIdleMs;
  // ICMP "too big" replies per second per CPU (xdp.icmp_too_big_rate); 0: none.
  uint32_t icmp_too_big_rate = kDefaultIcmpTooBigRate;
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

// Destroys a skeleton (each program owns its own through a unique_ptr).
struct SkeletonDeleter {
  void operator()(ringlb_xdp* skel) const;
  void operator()(ringlb_decap* skel) const;
  void operator()(ringlb_reuseport* skel) const;
};

// The data-plane program (ringlb_xdp) and its maps.
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
  // The fd of the map called `name` (e.g. "flows"), or -1.
  int map_fd(std::string_view name) const;
  const LoadOptions& options() const { return options_; }

 private:
  XdpProgram() = default;
  std::unique_ptr<ringlb_xdp, SkeletonDeleter> skel_;
  LoadOptions options_;
};

}  // namespace ringlb::xdp
