// The decap program's tc entry point on clsact ingress (decap.h): attach_tc and
// detach_decap_tc, through libbpf's tc API (bpf_tc_*); the filter count that decides
// whether the qdisc goes is a raw netlink dump (tc_netlink.cpp).
#include <bpf/libbpf.h>
#include <linux/pkt_sched.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>

#include "hook.h"
#include "interfaces.h"
#include "libbpf_log.h"
#include "ringlb/xdp/decap.h"
#include "tc_netlink.h"

namespace ringlb::xdp {
namespace {

// The name the kernel gives the tc entry point (bpf_prog_info.name, at most 15
// characters): how detach tells ringlb's filter from another one.
constexpr std::string_view kDecapTcName = "ringlb_decap_tc";

bpf_tc_hook ingress_hook(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  return hook;
}

// bpf_tc_opts naming ringlb's filter (handle and priority only: what query and detach
// take).
bpf_tc_opts decap_filter() {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kDecapTcHandle;
  opts.priority = kDecapTcPriority;
  return opts;
}

// The id of the program at ringlb's handle and priority on clsact ingress, or 0 when
// there is none (or no clsact qdisc).
Result<uint32_t> decap_filter_program(int ifindex) {
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = decap_filter();
  const int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) {
    return 0u;  // no such filter; EINVAL: no clsact qdisc to look in
  }
  if (err != 0) {
    return libbpf_error("Failed to query the tc ingress filters of " + interface_name(ifindex),
                        err);
  }
  return opts.prog_id;
}

// The name of the program at ringlb's handle and priority, or "" when there is none.
Result<std::string> decap_filter_name(int ifindex) {
  auto held_by = decap_filter_program(ifindex);
  if (!held_by) {
    return held_by.error();
  }
  if (*held_by == 0) {
    return std::string();
  }
  return program_name(*held_by);
}

// The clsact qdisc that attach_tc() created, removed again unless the attach succeeded.
class CreatedClsact {
 public:
  explicit CreatedClsact(int ifindex) : ifindex_(ifindex) {}
  CreatedClsact(const CreatedClsact&) = delete;
  CreatedClsact& operator=(const CreatedClsact&) = delete;
  ~CreatedClsact() {
    if (ifindex_ != 0) {
      bpf_tc_hook hook = ingress_hook(ifindex_);
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook);
    }
  }
  void keep() { ifindex_ = 0; }

 private:
  int ifindex_;
};

// Removes the clsact qdisc when no filter is left on it, ingress or egress (other
// filters would go with it).
Result<void> remove_unused_clsact(int ifindex, const LogCapture& log) {
  auto ingress = count_tc_filters(ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS));
  if (!ingress) {
    return ingress.error();
  }
  auto egress = count_tc_filters(ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS));
  if (!egress) {
    return egress.error();
  }
  if (*ingress == 0 && *egress == 0) {
    bpf_tc_hook hook = ingress_hook(ifindex);
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    if (const int err = bpf_tc_hook_destroy(&hook); err != 0 && err != -ENOENT) {
      return libbpf_error("Failed to remove the clsact qdisc of " + interface_name(ifindex), err,
                          &log);
    }
  }
  return {};
}

}  // namespace

Result<void> DecapProgram::attach_tc(int ifindex) const {
  // libbpf prints the kernel's netlink messages ("Exclusivity flag on" for an existing
  // qdisc); keep them for the error instead.
  LogCapture log;
  const std::string name = interface_name(ifindex);
  auto held_by = decap_filter_program(ifindex);
  if (!held_by) {
    return held_by.error();
  }
  if (*held_by != 0) {
    auto held_name = program_name(*held_by);
    if (!held_name) {
      return held_name.error();
    }
    if (*held_name != kDecapTcName) {
      return system_error("Failed to attach the decap tc filter to " + name + ": handle " +
                              std::to_string(kDecapTcHandle) + " priority " +
                              std::to_string(kDecapTcPriority) + " holds another program (id " +
                              std::to_string(*held_by) + ", " + *held_name + ")",
                          EBUSY);
    }
  }
  bpf_tc_hook hook = ingress_hook(ifindex);
  std::optional<CreatedClsact> created;
  if (const int err = bpf_tc_hook_create(&hook); err == 0) {
    created.emplace(ifindex);
  } else if (err != -EEXIST) {
    return libbpf_error("Failed to create the clsact qdisc of " + name, err, &log);
  }
  bpf_tc_opts opts = decap_filter();
  opts.prog_fd = tc_fd();
  opts.flags = BPF_TC_F_REPLACE;
  if (const int err = bpf_tc_attach(&hook, &opts); err != 0) {
    return libbpf_error("Failed to attach the decap tc filter to " + name + " (clsact ingress)",
                        err, &log);
  }
  if (created) {
    created->keep();
  }
  return {};
}

Result<uint32_t> decap_tc_program_id(int ifindex) {
  LogCapture log;  // as in detach_decap_tc
  auto held_by = decap_filter_program(ifindex);
  if (!held_by || *held_by == 0) {
    return held_by;
  }
  auto name = program_name(*held_by);
  if (!name) {
    return name.error();
  }
  return *name == kDecapTcName ? *held_by : 0u;
}

Result<bool> detach_decap_tc(int ifindex) {
  LogCapture log;  // as in attach_tc ("Parent Qdisc doesn't exists" without clsact)
  auto held_name = decap_filter_name(ifindex);
  if (!held_name) {
    return held_name.error();
  }
  if (*held_name != kDecapTcName) {
    return false;  // no filter there, or another program's
  }
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = decap_filter();
  if (const int err = bpf_tc_detach(&hook, &opts); err != 0) {
    return libbpf_error("Failed to detach the decap tc filter from " + interface_name(ifindex), err,
                        &log);
  }
  if (auto removed = remove_unused_clsact(ifindex, log); !removed) {
    return removed.error();
  }
  return true;
}

}  // namespace ringlb::xdp
