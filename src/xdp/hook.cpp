// The XDP hook (attach.h, hook.h): the one place that asks the kernel what is attached
// (bpf_xdp_query, bpf_prog_info), and attaching and detaching.
#include "hook.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <cerrno>
#include <utility>

#include "interfaces.h"
#include "libbpf_log.h"
#include "ringlb/fd.h"
#include "ringlb/xdp/attach.h"

namespace ringlb::xdp {
namespace {

// What bpf_xdp_query says of the hook.
struct HookQuery {
  uint8_t attach_mode = XDP_ATTACHED_NONE;  // XDP_ATTACHED_*; MULTI: several modes
  uint32_t prog_id = 0;                     // the program, when one mode holds one
  uint32_t drv_prog_id = 0;
  uint32_t skb_prog_id = 0;
  uint32_t hw_prog_id = 0;

  // The program there (the native one first when several modes hold one), or 0.
  uint32_t current() const {
    return prog_id != 0 ? prog_id : drv_prog_id != 0 ? drv_prog_id : skb_prog_id;
  }
};

// `device` names the interface in the error.
Result<HookQuery> query_hook(int ifindex, const std::string& device) {
  bpf_xdp_query_opts query{};
  query.sz = sizeof(query);
  if (const int err = bpf_xdp_query(ifindex, 0, &query); err != 0) {
    return libbpf_error("Failed to query the XDP program of " + device, err);
  }
  return HookQuery{.attach_mode = query.attach_mode,
                   .prog_id = query.prog_id,
                   .drv_prog_id = query.drv_prog_id,
                   .skb_prog_id = query.skb_prog_id,
                   .hw_prog_id = query.hw_prog_id};
}

// check_attachable() for the program `attached_id` (0: none) that the hook holds.
Result<void> check_attached(uint32_t attached_id, const std::string& device, std::string_view name,
                            bool replace_other) {
  if (attached_id == 0 || replace_other) {
    return {};
  }
  auto other = program_name(attached_id);
  if (!other) {
    return other.error();
  }
  if (*other == name) {
    return {};
  }
  return Error{"Failed to attach XDP program to " + device + ": it already has XDP program '" +
                   *other + "' (id " + std::to_string(attached_id) +
                   ") of another tool. Detach that one first (ip link set dev " + device +
                   " xdp off), or pass --force to replace it",
               EBUSY};
}

uint32_t attach_flags(XdpAttach mode) {
  return mode == XdpAttach::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
}

}  // namespace

Result<std::string> program_name(uint32_t id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(id));
  if (fd.get() < 0) {
    return system_error("Failed to open BPF program " + std::to_string(id), errno);
  }
  bpf_prog_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
    return system_error("Failed to read BPF program " + std::to_string(id), errno);
  }
  return std::string(info.name);
}

std::string_view hook_mode_name(XdpHookMode mode) {
  switch (mode) {
    case XdpHookMode::native:
      return "native";
    case XdpHookMode::generic:
      return "generic";
    case XdpHookMode::offload:
      return "offload";
  }
  return "?";
}

Result<std::vector<AttachedProgram>> attached_programs(int ifindex) {
  auto hook = query_hook(ifindex, interface_name(ifindex));
  if (!hook) {
    return hook.error();
  }
  std::vector<AttachedProgram> out;
  for (const auto& [mode, id] : {std::pair{XdpHookMode::native, hook->drv_prog_id},
                                 std::pair{XdpHookMode::generic, hook->skb_prog_id},
                                 std::pair{XdpHookMode::offload, hook->hw_prog_id}}) {
    if (id != 0) {
      auto name = program_name(id);
      out.push_back(AttachedProgram{.mode = mode, .id = id, .name = name ? *name : "?"});
    }
  }
  return out;
}

Result<std::optional<AttachedProgram>> attached_program(int ifindex) {
  auto programs = attached_programs(ifindex);
  if (!programs) {
    return programs.error();
  }
  if (programs->empty()) {
    return std::optional<AttachedProgram>();
  }
  return std::optional<AttachedProgram>(programs->front());
}

Result<void> check_attachable(int ifindex, std::string_view name, bool replace_other) {
  const std::string device = interface_name(ifindex);
  auto hook = query_hook(ifindex, device);
  if (!hook) {
    return hook.error();
  }
  return check_attached(hook->current(), device, name, replace_other);
}

Result<void> attach_program(int ifindex, int prog_fd, XdpAttach mode, bool replace_other) {
  const std::string device = interface_name(ifindex);
  const char* mode_name = mode == XdpAttach::native ? "native" : "generic";
  bpf_prog_info ours{};
  uint32_t length = sizeof(ours);
  if (bpf_obj_get_info_by_fd(prog_fd, &ours, &length) != 0) {
    return system_error("Failed to read the program to attach", errno);
  }
  auto hook = query_hook(ifindex, device);
  if (!hook) {
    return hook.error();
  }
  if (auto ok = check_attached(hook->current(), device, ours.name, replace_other); !ok) {
    return ok;
  }
  UniqueFd old_fd;
  if (hook->attach_mode != XDP_ATTACHED_NONE) {
    const bool same = (hook->attach_mode == XDP_ATTACHED_DRV && mode == XdpAttach::native) ||
                      (hook->attach_mode == XDP_ATTACHED_SKB && mode == XdpAttach::generic);
    if (same) {
      old_fd.reset(bpf_prog_get_fd_by_id(hook->current()));
    } else if (auto detached = detach(ifindex); !detached) {
      // The kernel refuses a second program in another mode: that one goes first.
      return detached;
    }
  }
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = old_fd.get() >= 0 ? old_fd.get() : 0);
  const uint32_t flags = attach_flags(mode) | (old_fd.get() >= 0 ? XDP_FLAGS_REPLACE : 0);
  const int err = bpf_xdp_attach(ifindex, prog_fd, flags, &opts);
  if (err != 0) {
    return libbpf_error("Failed to attach XDP program to " + device + " (" + mode_name + ")", err);
  }
  return {};
}

Result<void> detach(int ifindex) {
  auto hook = query_hook(ifindex, "interface " + std::to_string(ifindex));
  if (!hook) {
    return hook.error();
  }
  uint32_t flags = 0;
  switch (hook->attach_mode) {
    case XDP_ATTACHED_NONE:
      return {};
    case XDP_ATTACHED_DRV:
      flags = XDP_FLAGS_DRV_MODE;
      break;
    case XDP_ATTACHED_SKB:
      flags = XDP_FLAGS_SKB_MODE;
      break;
    case XDP_ATTACHED_HW:
      flags = XDP_FLAGS_HW_MODE;
      break;
    default:
      break;  // several modes: detach the driver one, then look again
  }
  if (flags == 0) {
    flags = XDP_FLAGS_DRV_MODE;
  }
  if (const int err = bpf_xdp_detach(ifindex, flags, nullptr); err != 0) {
    return libbpf_error("Failed to detach XDP program", err);
  }
  if (hook->attach_mode == XDP_ATTACHED_MULTI) {
    return detach(ifindex);
  }
  return {};
}

Result<std::vector<NamedProgram>> named_programs(int ifindex, std::string_view name) {
  auto hook = query_hook(ifindex, interface_name(ifindex));
  if (!hook) {
    return hook.error();
  }
  const NamedProgram attached[] = {{hook->drv_prog_id, XDP_FLAGS_DRV_MODE},
                                   {hook->skb_prog_id, XDP_FLAGS_SKB_MODE}};
  std::vector<NamedProgram> out;
  for (const auto& program : attached) {
    if (program.id == 0) {
      continue;
    }
    auto attached_name = program_name(program.id);
    if (!attached_name) {
      return attached_name.error();
    }
    if (*attached_name == name) {
      out.push_back(program);
    }
  }
  return out;
}

Result<bool> detach_named(int ifindex, std::string_view name, std::string_view what) {
  const std::string device = interface_name(ifindex);
  auto attached = named_programs(ifindex, name);
  if (!attached) {
    return attached.error();
  }
  bool detached = false;
  for (const auto& [id, flags] : *attached) {
    if (const int err = bpf_xdp_detach(ifindex, flags, nullptr); err != 0) {
      return libbpf_error("Failed to detach the " + std::string(what) + " from " + device, err);
    }
    detached = true;
  }
  return detached;
}

}  // namespace ringlb::xdp
