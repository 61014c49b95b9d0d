// Interfaces: index by name, name by index, and the addresses encapsulated packets leave
// from (interfaces.h, attach.h, program.h).
#include "interfaces.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "ringlb/xdp/attach.h"
#include "ringlb/xdp/program.h"

namespace ringlb::xdp {

std::string interface_name(int ifindex) {
  char name[IF_NAMESIZE] = "?";
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) {
    return "interface " + std::to_string(ifindex);
  }
  return name;
}

Result<int> interface_index(const std::string& name) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) {
    return system_error("Failed to find interface " + name, errno);
  }
  return static_cast<int>(index);
}

Result<void> set_sources_from_interface(LoadOptions& options, const std::string& interface) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return system_error("Failed to list interface addresses", errno);
  }
  bool v4 = false;
  bool v6 = false;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || interface != ifa->ifa_name) {
      continue;
    }
    if (ifa->ifa_addr->sa_family == AF_INET && !v4) {
      options.source_v4 = reinterpret_cast<sockaddr_in*>(ifa->ifa_addr)->sin_addr.s_addr;
      v4 = true;
    } else if (ifa->ifa_addr->sa_family == AF_INET6 && !v6) {
      const auto& a = reinterpret_cast<sockaddr_in6*>(ifa->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&a)) {
        continue;
      }
      std::memcpy(options.source_v6.data(), &a, 16);
      v6 = true;
    }
  }
  freeifaddrs(list);
  if (!v4 && !v6) {
    return Error{"Failed to find an address on " + interface +
                 " for the outer header of encapsulated packets"};
  }
  return {};
}

}  // namespace ringlb::xdp
