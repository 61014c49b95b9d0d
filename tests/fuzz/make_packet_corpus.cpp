// Writes the packet fuzzer's seed corpus: frames built with the XDP tests' packet
// builder (tests/xdp/packet.h), one per file, toward each kind of VIP packet_fuzz.cpp
// configures and through each header the parser knows. Run it after changing the
// builder or the VIPs:  make_packet_corpus tests/fuzz/corpus/packet
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "../xdp/packet.h"

using namespace ringlb::test;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const Mac client{0x02, 0, 0, 0, 0, 0x10};
  const Mac lb{0x02, 0, 0, 0, 0, 0x01};
  auto eth = [&] { return Packet().Eth(client, lb); };
  // A TCP SYN as quoted inside an ICMP error.
  const Bytes quoted =
      Packet().Eth(client, lb).IPv4("10.0.0.10", "10.3.0.1").TCP(80, 40000, kSyn).build();
  const Bytes quoted_l3(quoted.begin() + 14, quoted.end());
  const std::vector<std::pair<std::string, Bytes>> frames = {
      {"v4_tcp_syn", eth().IPv4("10.1.0.5", "10.0.0.10").TCP(40000, 80, kSyn).payload(16).build()},
      {"v4_tcp_ack", eth().IPv4("10.1.0.6", "10.0.0.10").TCP(40001, 80, kAck).payload(200).build()},
      {"v4_udp_dns", eth().IPv4("10.1.0.7", "10.0.0.10").UDP(5353, 53).payload(40).build()},
      {"v4_not_vip", eth().IPv4("10.1.0.5", "10.0.0.99").TCP(40000, 80, kSyn).build()},
      {"v4_empty_pool", eth().IPv4("10.1.0.5", "10.0.0.11").TCP(40000, 80, kSyn).build()},
      {"v4_steer", eth().IPv4("10.1.0.5", "10.0.0.20").TCP(40000, 8080, kSyn).build()},
      {"v4_options",
       eth().IPv4("10.1.0.5", "10.0.0.10", Bytes{1, 1, 1, 0}).TCP(40000, 80, kSyn).build()},
      {"v4_first_fragment",
       eth().IPv4("10.1.0.5", "10.0.0.10", {}, 0x2000).TCP(40000, 80, kSyn).payload(8).build()},
      {"v4_later_fragment", eth().IPv4("10.1.0.5", "10.0.0.10", {}, 0x0010).payload(24).build()},
      {"v4_icmp_echo", eth().IPv4("10.1.0.5", "10.0.0.10").ICMP(8, 0).payload(8).build()},
      {"v4_icmp_error", eth().IPv4("10.3.0.1", "10.0.0.10").ICMP(3, 1).raw(quoted_l3).build()},
      {"v4_too_big",
       eth().IPv4("10.1.0.5", "10.0.0.10").TCP(40000, 80, kAck).payload(1480).build()},
      {"vlan_v4", eth().Vlan(100).IPv4("10.1.0.5", "10.0.0.10").TCP(40000, 80, kSyn).build()},
      {"qinq_v4",
       eth().Vlan(200, 0x88a8).Vlan(100).IPv4("10.1.0.5", "10.0.0.10").TCP(1, 80, kSyn).build()},
      {"v6_tcp_syn", eth().IPv6("fd00:1::5", "fd00::10").TCP(40000, 80, kSyn).payload(16).build()},
      {"v6_ext_headers",
       eth().IPv6("fd00:1::5", "fd00::10", {{0, 8}, {60, 16}}).TCP(40000, 80, kSyn).build()},
      {"v6_fragment", eth().IPv6("fd00:1::5", "fd00::10", {{44, 8}}).payload(16).build()},
      {"v6_icmp_echo", eth().IPv6("fd00:1::5", "fd00::10").ICMP(128, 0).build()},
      {"v6_udp_not_vip", eth().IPv6("fd00:1::5", "fd00::10").UDP(1, 53).build()},
      {"arp", eth().Arp().build()},
  };
  for (const auto& [name, bytes] : frames) {
    std::ofstream out(std::string(argv[1]) + "/" + name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::perror(name.c_str());
      return 1;
    }
  }
  return 0;
}
