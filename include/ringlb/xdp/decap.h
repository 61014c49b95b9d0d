// The backend-side decapsulation program (bpf/decap.bpf.c). One object, two entry points
// that share the parsing and the decap_stats counters:
//   - ringlb_decap, on the XDP hook (native, or generic on any device);
//   - ringlb_decap_tc, a direct-action cls_bpf filter on the clsact ingress hook, for
//     devices without native XDP or whose XDP hook another program owns. It sees packets
//     after the kernel took the VLAN tag out of the frame, so a tag left in the frame
//     (QinQ's inner tag) is passed untouched (RINGLB_DV_PASS_UNSUPPORTED).
// Either attachment outlives the process, as the balancer's does.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/model/address.h"
#include "ringlb/result.h"
#include "ringlb/xdp/program.h"

namespace ringlb::xdp {

// An address prefix: "192.0.2.0/24", "2001:db8::/64"; an address alone is a host.
struct IpPrefix {
  IpAddress address;
  uint32_t length = 0;  // bits
};
// Refuses text that is no prefix, a length beyond the family's, and host bits set
// ("10.0.0.1/8"), naming the text.
Result<IpPrefix> parse_prefix(std::string_view text);

// Whose tunnel packets the decap program strips: the balancers' encapsulation sources
// (`prefixes`), or anyone (`any`). A tunnel packet from another source is dropped.
struct DecapAllow {
  bool any = false;
  std::vector<IpPrefix> prefixes;
};

class DecapProgram {
 public:
  // Fails, naming the reason, when `allow` holds more than RINGLB_DECAP_ALLOW_MAX prefixes
  // of one family.
  static Result<DecapProgram> load(const DecapAllow& allow);
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

// What ringlb's decap program attached to one hook of an interface counted: its
// decap_stats, summed over CPUs, one entry per enum ringlb_decap_verdict.
struct DecapHookStats {
  std::string hook;  // "xdp" or "tc"
  std::vector<ringlb_counter> verdicts;
};

// The counters of ringlb's decap program on each hook of `ifindex` that has one (the XDP
// hook, then clsact ingress); empty when neither has.
Result<std::vector<DecapHookStats>> read_decap_stats(int ifindex);

// The id of the tc filter program at ringlb's handle and priority if it is ringlb's
// decap program, else 0 (tc_attach.cpp).
Result<uint32_t> decap_tc_program_id(int ifindex);

// The name of a decap_stats entry ("drop_source"); "unknown" past the last.
std::string_view decap_verdict_name(uint32_t verdict);

}  // namespace ringlb::xdp
