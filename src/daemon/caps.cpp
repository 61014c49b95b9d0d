#include "daemon/caps.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace ringlb::daemon {

namespace {

constexpr CapabilityMask bit(int cap) {
  return CapabilityMask{1} << cap;
}

// The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap), so the
// bounding-set loop covers capabilities newer than our headers.
int last_capability() {
  int last = CAP_LAST_CAP;
  while (last < 63 && ::prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0) {
    ++last;
  }
  return last;
}

struct CapSets {
  CapabilityMask effective = 0;
  CapabilityMask permitted = 0;
  CapabilityMask inheritable = 0;
};

// capget/capset directly: glibc has no wrapper and libcap is not needed for this.
Result<CapSets> get_caps() {
  __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return system_error("capget", errno);
  }
  CapSets sets;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    sets.effective |= CapabilityMask{data[i].effective} << (32 * i);
    sets.permitted |= CapabilityMask{data[i].permitted} << (32 * i);
    sets.inheritable |= CapabilityMask{data[i].inheritable} << (32 * i);
  }
  return sets;
}

Result<void> set_caps(const CapSets& sets) {
  __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    data[i].effective = static_cast<uint32_t>(sets.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(sets.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(sets.inheritable >> (32 * i));
  }
  if (::syscall(SYS_capset, &header, data) != 0) {
    return system_error("capset", errno);
  }
  return {};
}

constexpr struct {
  int cap;
  const char* name;
} kKeptNames[] = {
    {CAP_NET_BIND_SERVICE, "cap_net_bind_service"},
    {CAP_NET_ADMIN, "cap_net_admin"},
    {CAP_SYS_ADMIN, "cap_sys_admin"},
    {CAP_SYS_RESOURCE, "cap_sys_resource"},
    {CAP_PERFMON, "cap_perfmon"},
    {CAP_BPF, "cap_bpf"},
};

}  // namespace

CapabilityMask capabilities_to_keep(bool control_filesystem) {
  CapabilityMask keep = bit(CAP_NET_BIND_SERVICE) | bit(CAP_NET_ADMIN) | bit(CAP_BPF) |
                        bit(CAP_PERFMON) | bit(CAP_SYS_RESOURCE);
  if (control_filesystem) {
    keep |= bit(CAP_SYS_ADMIN);
  }
  return keep;
}

std::string capability_names(CapabilityMask mask) {
  std::string out;
  for (int cap = 0; cap < 64; ++cap) {
    if ((mask & bit(cap)) == 0) {
      continue;
    }
    std::string name = "cap_" + std::to_string(cap);
    for (const auto& known : kKeptNames) {
      if (known.cap == cap) {
        name = known.name;
      }
    }
    out += (out.empty() ? "" : ",") + name;
  }
  return out.empty() ? "none" : out;
}

Result<CapabilityMask> drop_capabilities(CapabilityMask keep) {
  auto current = get_caps();
  if (!current) {
    return current.error();
  }
  // The bounding set first: removing from it needs CAP_SETPCAP, which goes next.
  if ((current->effective & bit(CAP_SETPCAP)) != 0) {
    const int last = last_capability();
    for (int cap = 0; cap <= last; ++cap) {
      if ((keep & bit(cap)) == 0 && ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
          ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        return system_error("prctl(PR_CAPBSET_DROP, " + std::to_string(cap) + ")", errno);
      }
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return system_error("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", errno);
  }
  const CapabilityMask kept = current->permitted & keep;
  if (auto set = set_caps(CapSets{.effective = kept, .permitted = kept, .inheritable = 0}); !set) {
    return set.error();
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return system_error("prctl(PR_SET_NO_NEW_PRIVS)", errno);
  }
  return kept;
}

}  // namespace ringlb::daemon
