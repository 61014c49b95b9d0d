// The network namespace the XDP tests and benchmarks run in (no gtest here, so perf/
// can use it): lb0 (10.99.0.1, fd00:99::1) with a veth peer whose MAC is fixed and
// whose neighbour entries are permanent, routes to the backend networks
// (10.200.0.0/16, fd00:200::/64) through it, and forwarding on (bpf_fib_lookup needs
// it). Entering it unshares the calling process's network namespace, which the kernel
// removes with the process: nothing to clean up.
#pragma once

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::test {

// Unshares a network namespace and builds the lab in it. Returns "" on success, else
// why not (not root, a command failed).
inline std::string enter_xdp_lab() {
  if (geteuid() != 0) {
    return "needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for unshare)";
  }
  if (unshare(CLONE_NEWNET) != 0) {
    return std::string("unshare(CLONE_NEWNET) failed: ") + strerror(errno);
  }
  const char* commands[] = {
      "ip link set lo up",
      "ip link add lb0 address 02:00:00:00:00:01 mtu 1500 type veth peer name peer0 address "
      "02:00:00:00:00:02",
      "ip link set lb0 up",
      "ip link set peer0 up",
      "ip addr add 10.99.0.1/24 dev lb0",
      "ip -6 addr add fd00:99::1/64 dev lb0 nodad",
      "ip neigh replace 10.99.0.2 lladdr 02:00:00:00:00:02 dev lb0 nud permanent",
      "ip -6 neigh replace fd00:99::2 lladdr 02:00:00:00:00:02 dev lb0 nud permanent",
      "ip route add 10.200.0.0/16 via 10.99.0.2",
      "ip -6 route add fd00:200::/64 via fd00:99::2",
      "sysctl -qw net.ipv4.ip_forward=1",
      "sysctl -qw net.ipv6.conf.all.forwarding=1",
  };
  for (const char* c : commands) {
    if (std::system((std::string(c) + " >/dev/null 2>&1").c_str()) != 0) {
      return std::string("network set-up failed: ") + c;
    }
  }
  return "";
}

// lb0's interface index in the lab.
inline int lab_ifindex() {
  return static_cast<int>(if_nametoindex("lb0"));
}

// Load options for a program in the lab: nothing pinned, lb0's addresses as the outer
// source of encapsulated packets.
inline xdp::LoadOptions lab_load_options(const Config& config) {
  auto options = xdp::load_options(config);
  options.pin_root.clear();
  in_addr v4;
  inet_pton(AF_INET, "10.99.0.1", &v4);
  options.source_v4 = v4.s_addr;
  in6_addr v6;
  inet_pton(AF_INET6, "fd00:99::1", &v6);
  std::memcpy(options.source_v6.data(), &v6, 16);
  return options;
}

}  // namespace ringlb::test
