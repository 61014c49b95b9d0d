// count_tc_filters (tc_netlink.h): an RTM_GETTFILTER dump, since libbpf has no call that
// lists filters.
#include "tc_netlink.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <vector>

#include "interfaces.h"
#include "ringlb/fd.h"

namespace ringlb::xdp {

Result<size_t> count_tc_filters(int ifindex, uint32_t parent) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (fd.get() < 0) {
    return system_error("Failed to open a netlink socket", errno);
  }
  struct {
    nlmsghdr header;
    tcmsg tc;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = RTM_GETTFILTER;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = 1;
  request.tc.tcm_family = AF_UNSPEC;
  request.tc.tcm_ifindex = ifindex;
  request.tc.tcm_parent = parent;
  if (::send(fd.get(), &request, sizeof(request), 0) < 0) {
    return system_error("Failed to ask for the tc filters of " + interface_name(ifindex), errno);
  }
  std::vector<char> buffer(32768);
  size_t filters = 0;
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      return system_error("Failed to read the tc filters of " + interface_name(ifindex), errno);
    }
    auto left = static_cast<uint32_t>(n);
    for (auto* msg = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(msg, left);
         msg = NLMSG_NEXT(msg, left)) {
      if (msg->nlmsg_type == NLMSG_DONE) {
        return filters;
      }
      if (msg->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(msg));
        if (error->error != 0) {
          return system_error("Failed to list the tc filters of " + interface_name(ifindex),
                              -error->error);
        }
        return filters;
      }
      if (msg->nlmsg_type == RTM_NEWTFILTER) {
        ++filters;
      }
    }
    if (n == 0) {
      return filters;
    }
  }
}

}  // namespace ringlb::xdp
