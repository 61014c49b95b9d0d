// Next-hop priming (next_hops.h).
#include "ringlb/xdp/next_hops.h"

#include <sys/socket.h>

#include "ringlb/fd.h"

namespace ringlb::xdp {

void resolve_next_hops(const Config& config) {
  resolve_next_hops(config.vips);
}

void resolve_next_hops(const std::vector<VipSpec>& vips) {
  for (const auto& vip : vips) {
    if (vip.mode != Mode::forward) {
      continue;
    }
    for (const auto& backend : vip.backends) {
      if (backend.state == AdminState::down) {
        continue;
      }
      // An empty datagram to the discard port: the kernel resolves the next hop's MAC,
      // which bpf_fib_lookup then finds. Failures only delay the first packets.
      const SocketAddress target{.ip = backend.address.ip, .port = 9};
      sockaddr_storage storage{};
      const socklen_t len = target.to_sockaddr(storage);
      UniqueFd fd(::socket(storage.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (fd.valid()) {
        (void)::sendto(fd.get(), "", 0, 0, reinterpret_cast<sockaddr*>(&storage), len);
      }
    }
  }
}

}  // namespace ringlb::xdp
