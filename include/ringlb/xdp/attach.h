// The XDP hook of an interface: what is attached to it, and detaching. The one place
// that asks the kernel (bpf_xdp_query, bpf_prog_info) what is attached: the loader's
// attach and detach, `ringlb status` and `ringlb attach`'s check go through it.
// Attaching a program is its owner's (XdpProgram::attach, DecapProgram::attach).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/result.h"

namespace ringlb::xdp {

// The interface index of `name`, or an error naming it.
Result<int> interface_index(const std::string& name);

// Where on the XDP hook a program runs.
enum class XdpHookMode { native, generic, offload };

// "native", "generic" or "offload".
std::string_view hook_mode_name(XdpHookMode mode);

// A program on an interface's XDP hook.
struct AttachedProgram {
  XdpHookMode mode = XdpHookMode::native;
  uint32_t id = 0;
  std::string name;  // bpf_prog_info.name (at most 15 characters); "?" when unreadable
};

// The programs on the interface's XDP hook, one per mode that holds one (native, then
// generic, then offload): none, one, or several when several modes are in use. The error
// carries the errno of the query (EPERM without CAP_NET_ADMIN).
Result<std::vector<AttachedProgram>> attached_programs(int ifindex);

// The program on the interface's XDP hook (the first of attached_programs()), or
// nullopt when the hook is free.
Result<std::optional<AttachedProgram>> attached_program(int ifindex);

// Whether a program named `name` may be attached to the interface's XDP hook: yes when
// the hook is free, holds a program of that name (ringlb's own, from an earlier attach)
// or `replace_other` is set; otherwise EBUSY, naming the other program and how to go on.
// attach() checks it; ringlb attach checks it first too, before it changes any map.
Result<void> check_attachable(int ifindex, std::string_view name, bool replace_other);

// Detaches whatever XDP program is attached to the interface (any mode). Detaching
// from an interface with no program is not an error.
Result<void> detach(int ifindex);

}  // namespace ringlb::xdp
