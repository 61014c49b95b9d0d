// Capabilities ringlbd keeps after set-up, and dropping the rest.
//
// ringlbd starts as root (or with the systemd unit's capabilities), binds its listeners,
// loads and attaches its BPF programs, and then keeps only what running and reloading
// still need:
//
//   CAP_NET_BIND_SERVICE  a reload may add a VIP on a port below 1024
//   CAP_BPF, CAP_NET_ADMIN  a reload that adds a steered VIP loads its sk_reuseport
//                         program and creates its maps (network program and map types
//                         need CAP_NET_ADMIN besides CAP_BPF); forward-mode next hops are
//                         kept resolved through netlink
//   CAP_PERFMON           the verifier's full (privileged) mode for those programs, and
//                         the workers' perf counters
//   CAP_SYS_RESOURCE      pipes beyond fs.pipe-user-pages-soft and --pipe-size above
//                         fs.pipe-max-size: without it, splice pipes shrink under load
//   CAP_SYS_ADMIN         only while the control filesystem is mounted: unmounting it at
//                         exit (umount2) needs it. Dropped with --no-control.
//
// Everything else (CAP_DAC_OVERRIDE, CAP_SETUID, CAP_SYS_PTRACE, CAP_SYS_MODULE, ...) is
// removed from the effective, permitted, inheritable and ambient sets and from the
// bounding set, and no_new_privs is set, so nothing can come back through execve.
//
// Capabilities belong to threads: drop them before any thread starts, and every thread
// (workers, the FUSE loop, the control mount's guardian process) inherits the reduced set.
#pragma once

#include <cstdint>
#include <string>

#include "ringlb/result.h"

namespace ringlb::daemon {

// A set of capabilities as the kernel's 64-bit mask (bit n: capability n), the form
// /proc/<pid>/status shows in CapEff, CapPrm and CapBnd.
using CapabilityMask = uint64_t;

// What ringlbd keeps after set-up (see above).
CapabilityMask capabilities_to_keep(bool control_filesystem);

// "cap_net_bind_service,cap_net_admin,...": for logs and error messages.
std::string capability_names(CapabilityMask mask);

// Lowers this thread's permitted and effective sets to `keep` intersected with what it
// has, clears the inheritable and ambient sets, removes every other capability from the
// bounding set (when CAP_SETPCAP allows; without it the process has nothing to lose
// there) and sets no_new_privs. Returns the capabilities kept, or why it failed (then
// some may have been dropped already; the caller must not continue).
Result<CapabilityMask> drop_capabilities(CapabilityMask keep);

}  // namespace ringlb::daemon
