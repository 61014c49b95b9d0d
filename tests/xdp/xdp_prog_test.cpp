// The XDP program under BPF_PROG_TEST_RUN: verdicts, exact output bytes, VLAN, IPv4
// options, IPv6 extension headers, fragments, ICMP, "too big" replies, truncation, fuzz,
// flow stickiness and hash parity with the C++ Maglev table. Needs root; skips otherwise.
//
// Why this file is long: about a hundred cases share one loaded program and
// packet builder (XdpEnv); a verdict table drives most of them.
#include <gtest/gtest.h>

#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <sys/socket.h>

#include <iostream>
#include <optional>
#include <random>
#include <utility>

#include "bpffs.h"
#include "ringlb/model/client_hash.h"
#include "ringlb/xdp/reuseport.h"
#include "xdp_env.h"

namespace ringlb::test {
namespace {

// Closes a socket when the test ends, also on failure.
struct UniqueSocket {
  explicit UniqueSocket(int f) : fd(f) {}
  UniqueSocket(UniqueSocket&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  UniqueSocket(const UniqueSocket&) = delete;
  UniqueSocket& operator=(const UniqueSocket&) = delete;
  UniqueSocket& operator=(UniqueSocket&&) = delete;
  ~UniqueSocket() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  int fd;
};

class XdpProgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = XdpEnv::setup();
    if (!reason.empty()) {
      GTEST_SKIP() << reason;
    }
  }
};

Bytes v4_syn(const char* client, const char* vip, uint16_t sport = 40000, uint16_t dport = 80,
             uint8_t flags = kSyn) {
  return Packet()
      .Eth(kClientMac, kLbMac)
      .IPv4(client, vip)
      .TCP(sport, dport, flags)
      .payload(16)
      .build();
}

Bytes v6_syn(const char* client, const char* vip, uint16_t sport = 40000) {
  return Packet()
      .Eth(kClientMac, kLbMac)
      .IPv6(client, vip)
      .TCP(sport, 80, kSyn)
      .payload(16)
      .build();
}

// The backend address the C++ side names for `client` on `vip`.
IpAddress expected_backend(const std::string& vip_name, const char* client) {
  const auto& vip = XdpEnv::vip(vip_name);
  const auto table = xdp::build_forward_table(vip, XdpEnv::config().daemon.maglev_table_size);
  const auto index =
      xdp::forward_backend(vip, table, XdpEnv::config().daemon.hash_key, *IpAddress::parse(client));
  EXPECT_TRUE(index.has_value());
  return vip.backends[index.value_or(0)].address.ip;
}

// The exact frame the program must send for `in` (L3 at `l3_off`) toward an IPv4 backend.
Bytes expected_ipip(const Bytes& in, size_t l3_off, const IpAddress& backend, bool inner_v6) {
  Bytes out;
  out.insert(out.end(), kPeerMac.begin(), kPeerMac.end());
  out.insert(out.end(), kLbMac.begin(), kLbMac.end());
  out.insert(out.end(), in.begin() + 12, in.begin() + l3_off - 2);  // VLAN tags
  out.push_back(0x08);
  out.push_back(0x00);
  const size_t inner_len = in.size() - l3_off;
  const size_t total = inner_len + 20;
  const uint8_t tos = inner_v6
                          ? static_cast<uint8_t>(((in[l3_off] & 0xf) << 4) | (in[l3_off + 1] >> 4))
                          : in[l3_off + 1];
  uint8_t outer[20] = {0x45,
                       tos,
                       static_cast<uint8_t>(total >> 8),
                       static_cast<uint8_t>(total & 0xff),
                       0,
                       0,
                       0x40,
                       0,
                       64,
                       static_cast<uint8_t>(inner_v6 ? 41 : 4),
                       0,
                       0};
  const uint32_t src = ip4("10.99.0.1");
  std::memcpy(outer + 12, &src, 4);
  std::memcpy(outer + 16, backend.bytes(), 4);
  const uint16_t csum = inet_csum(outer, 20);
  outer[10] = csum >> 8;
  outer[11] = csum & 0xff;
  out.insert(out.end(), outer, outer + 20);
  out.insert(out.end(), in.begin() + l3_off, in.end());
  return out;
}

uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}

// --- Verdicts, table-driven ------------------------------------------------------------

struct VerdictCase {
  std::string name;
  Bytes packet;
  uint32_t retval;
  ringlb_verdict verdict;
};

std::vector<VerdictCase> verdict_cases() {
  Bytes icmp_quote = Packet().IPv4("10.0.0.10", "10.1.0.5").TCP(80, 40000, kAck).build();
  Bytes icmp_quote_other = Packet().IPv4("10.0.0.99", "10.1.0.5").TCP(80, 40000, kAck).build();
  // From the VIP's address, but from a port no VIP listens on.
  Bytes icmp_quote_other_port =
      Packet().IPv4("10.0.0.10", "10.1.0.5").TCP(8443, 40000, kAck).build();
  return {
      {"tcp_syn_to_vip", v4_syn("10.1.0.5", "10.0.0.10"), XDP_TX, RINGLB_V_TX_FORWARD},
      {"udp_to_vip",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.1.0.5", "10.0.0.10")
           .UDP(5353, 53)
           .payload(20)
           .build(),
       XDP_TX, RINGLB_V_TX_FORWARD},
      {"tcp_syn_to_vip6", v6_syn("fd00:1::5", "fd00::10"), XDP_TX, RINGLB_V_TX_FORWARD},
      {"tcp_to_other_port", v4_syn("10.1.0.5", "10.0.0.10", 40000, 81), XDP_PASS,
       RINGLB_V_PASS_NOT_VIP},
      {"tcp_to_other_address", v4_syn("10.1.0.5", "10.0.0.99"), XDP_PASS, RINGLB_V_PASS_NOT_VIP},
      {"udp_to_tcp_vip",
       Packet().Eth(kClientMac, kLbMac).IPv4("10.1.0.5", "10.0.0.10").UDP(5353, 80).build(),
       XDP_PASS, RINGLB_V_PASS_NOT_VIP},
      {"sctp_to_vip_address",
       [] {
         auto b =
             Packet().Eth(kClientMac, kLbMac).IPv4("10.1.0.5", "10.0.0.10").payload(20).build();
         b[14 + 9] = 132;
         return b;
       }(),
       XDP_PASS, RINGLB_V_PASS_NOT_VIP},
      {"arp", Packet().Eth(kClientMac, kLbMac).Arp().build(), XDP_PASS, RINGLB_V_PASS_NOT_IP},
      {"vlan_tcp_syn_to_vip",
       Packet()
           .Eth(kClientMac, kLbMac)
           .Vlan(100)
           .IPv4("10.1.0.5", "10.0.0.10")
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_TX, RINGLB_V_TX_FORWARD},
      {"qinq_tcp_syn_to_vip",
       Packet()
           .Eth(kClientMac, kLbMac)
           .Vlan(200, 0x88a8)
           .Vlan(100)
           .IPv4("10.1.0.5", "10.0.0.10")
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_TX, RINGLB_V_TX_FORWARD},
      {"three_vlan_tags_pass",
       Packet()
           .Eth(kClientMac, kLbMac)
           .Vlan(1, 0x88a8)
           .Vlan(2, 0x88a8)
           .Vlan(3)
           .IPv4("10.1.0.5", "10.0.0.10")
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_PASS, RINGLB_V_PASS_MALFORMED},
      {"ipv4_options_to_vip",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.1.0.5", "10.0.0.10", {1, 1, 1, 0, 0x94, 4, 0, 0})
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_TX, RINGLB_V_TX_FORWARD},
      {"ipv6_ext_headers_to_vip",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv6("fd00:1::5", "fd00::10", {{0, 8}, {60, 16}})
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_TX, RINGLB_V_TX_FORWARD},
      {"ipv6_too_many_ext_headers",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv6("fd00:1::5", "fd00::10",
                 {{0, 8}, {60, 8}, {60, 8}, {60, 8}, {60, 8}, {60, 8}, {60, 8}})
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_PASS, RINGLB_V_PASS_MALFORMED},
      {"ipv4_first_fragment",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.1.0.5", "10.0.0.10", {}, 0x2000)
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_TX, RINGLB_V_TX_FRAGMENT},
      {"ipv4_later_udp_fragment",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.1.0.5", "10.0.0.10", {}, 0x00b9)
           .Protocol(17)
           .payload(40)
           .build(),
       XDP_TX, RINGLB_V_TX_FRAGMENT},
      {"ipv4_later_fragment_of_another_protocol",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.1.0.5", "10.0.0.10", {}, 0x00b9)
           .Protocol(132)
           .payload(40)
           .build(),
       XDP_PASS, RINGLB_V_PASS_FRAGMENT},
      {"ipv4_fragment_to_a_steer_vip_address",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.1.0.5", "10.0.0.20", {}, 0x00b9)
           .Protocol(6)
           .payload(40)
           .build(),
       XDP_PASS, RINGLB_V_PASS_FRAGMENT},
      {"ipv6_fragment",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv6("fd00:1::5", "fd00::10", {{44, 8}})
           .TCP(40000, 80, kSyn)
           .build(),
       XDP_TX, RINGLB_V_TX_FRAGMENT},
      {"ipv6_udp_fragment_without_a_udp_vip",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv6("fd00:1::5", "fd00::10", {{44, 8}})
           .Protocol(17)
           .payload(40)
           .build(),
       XDP_PASS, RINGLB_V_PASS_FRAGMENT},
      {"icmp_echo_to_vip",
       Packet().Eth(kClientMac, kLbMac).IPv4("10.1.0.5", "10.0.0.10").ICMP(8, 0).payload(8).build(),
       XDP_PASS, RINGLB_V_PASS_ICMP},
      {"icmp_unreachable_about_vip_flow",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.3.0.1", "10.0.0.10")
           .ICMP(3, 4, 1400)
           .raw(icmp_quote)
           .build(),
       XDP_TX, RINGLB_V_TX_ICMP_ERROR},
      {"icmp_unreachable_about_other",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.3.0.1", "10.0.0.99")
           .ICMP(3, 4, 1400)
           .raw(icmp_quote_other)
           .build(),
       // Settled by the address filter: an error sent to an address that is no VIP's.
       XDP_PASS, RINGLB_V_PASS_NOT_VIP},
      {"icmp_unreachable_about_other_port",
       Packet()
           .Eth(kClientMac, kLbMac)
           .IPv4("10.3.0.1", "10.0.0.10")
           .ICMP(3, 4, 1400)
           .raw(icmp_quote_other_port)
           .build(),
       XDP_PASS, RINGLB_V_PASS_ICMP},
      {"icmp6_echo_to_vip",
       Packet().Eth(kClientMac, kLbMac).IPv6("fd00:1::5", "fd00::10").ICMP(128, 0).build(),
       XDP_PASS, RINGLB_V_PASS_ICMP},
      {"vip_without_backends", v4_syn("10.1.0.5", "10.0.0.11"), XDP_DROP, RINGLB_V_DROP_NO_BACKEND},
      {"backend_without_route", v4_syn("10.1.0.5", "10.0.0.12"), XDP_DROP, RINGLB_V_DROP_FIB},
      {"backend_without_neighbour", v4_syn("10.1.0.5", "10.0.0.13"), XDP_DROP,
       RINGLB_V_DROP_NO_NEIGH},
      {"steer_vip", v4_syn("10.1.0.5", "10.0.0.20", 40000, 8080), XDP_REDIRECT,
       RINGLB_V_REDIRECT_STEER},
      {"bad_ip_version",
       [] {
         auto b = v4_syn("10.1.0.5", "10.0.0.10");
         b[14] = 0x55;
         return b;
       }(),
       XDP_PASS, RINGLB_V_PASS_MALFORMED},
      {"ip_total_length_beyond_frame",
       [] {
         auto b = v4_syn("10.1.0.5", "10.0.0.10");
         b[16] = 0x05;
         return b;
       }(),
       XDP_PASS, RINGLB_V_PASS_MALFORMED},
      {"tcp_data_offset_too_small",
       [] {
         auto b = v4_syn("10.1.0.5", "10.0.0.10");
         b[14 + 20 + 12] = 0x40;
         return b;
       }(),
       XDP_PASS, RINGLB_V_PASS_MALFORMED},
  };
}

class XdpVerdict : public XdpProgTest, public ::testing::WithParamInterface<VerdictCase> {};

TEST_P(XdpVerdict, GivesTheDefinedVerdictAndCountsIt) {
  const auto& c = GetParam();
  const uint64_t before = XdpEnv::verdict_count(c.verdict);
  const auto r = XdpEnv::run(c.packet);
  ASSERT_EQ(r.err, 0) << "test_run: " << strerror(r.err);
  EXPECT_EQ(r.retval, c.retval) << c.name << " retval";
  EXPECT_EQ(XdpEnv::verdict_count(c.verdict), before + 1)
      << c.name << " counter " << xdp::verdict_name(c.verdict);
  if (c.retval == XDP_PASS) {
    EXPECT_EQ(r.out, c.packet) << c.name << " passes unmodified";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, XdpVerdict, ::testing::ValuesIn(verdict_cases()),
                         [](const auto& info) { return info.param.name; });

// --- Exact bytes ----------------------------------------------------------------------

TEST_F(XdpProgTest, EncapsulatesIPv4InIPIPByteForByte) {
  const Bytes in = v4_syn("10.1.0.5", "10.0.0.10");
  const auto r = XdpEnv::run(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "retval";
  const IpAddress backend = expected_backend("web", "10.1.0.5");
  const Bytes expected = expected_ipip(in, 14, backend, false);
  ASSERT_EQ(r.out.size(), expected.size()) << "encapsulated length";
  EXPECT_EQ(get16(r.out, 12), 0x0800) << "ethertype";
  EXPECT_EQ(r.out[14], 0x45) << "outer version/ihl";
  EXPECT_EQ(get16(r.out, 16), in.size() - 14 + 20) << "outer total length";
  EXPECT_EQ(get16(r.out, 20), 0x4000) << "outer DF";
  EXPECT_EQ(r.out[22], 64) << "outer ttl";
  EXPECT_EQ(r.out[23], 4) << "outer protocol IPIP";
  EXPECT_EQ(inet_csum(&r.out[14], 20), 0) << "outer header checksum verifies";
  EXPECT_EQ(0, std::memcmp(&r.out[30], backend.bytes(), 4))
      << "outer destination = table's backend";
  EXPECT_EQ(r.out, expected) << "whole frame";
}

TEST_F(XdpProgTest, EncapsulatesIPv6InIP6IP6ByteForByte) {
  const Bytes in = v6_syn("fd00:1::5", "fd00::10", 41000);
  const auto r = XdpEnv::run(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "retval";
  const IpAddress backend = expected_backend("web6", "fd00:1::5");
  Bytes expected(kPeerMac.begin(), kPeerMac.end());
  expected.insert(expected.end(), kLbMac.begin(), kLbMac.end());
  expected.push_back(0x86);
  expected.push_back(0xdd);
  // Flow label: the client address words and the ports folded to 20 bits (ringlb.bpf.c).
  const auto client = ip6("fd00:1::5");
  uint32_t words[4];
  std::memcpy(words, client.data(), 16);
  const uint32_t label = (words[0] ^ words[1] ^ words[2] ^ words[3] ^
                          ((static_cast<uint32_t>(htons(41000)) << 16) | htons(80))) &
                         0xfffff;
  const size_t inner = in.size() - 14;
  const uint8_t outer[8] = {0x60,
                            static_cast<uint8_t>((label >> 16) & 0xf),
                            static_cast<uint8_t>(label >> 8),
                            static_cast<uint8_t>(label),
                            static_cast<uint8_t>(inner >> 8),
                            static_cast<uint8_t>(inner),
                            41,
                            64};
  expected.insert(expected.end(), outer, outer + 8);
  const auto src = ip6("fd00:99::1");
  expected.insert(expected.end(), src.begin(), src.end());
  expected.insert(expected.end(), backend.bytes(), backend.bytes() + 16);
  expected.insert(expected.end(), in.begin() + 14, in.end());
  ASSERT_EQ(r.out.size(), expected.size()) << "encapsulated length";
  EXPECT_EQ(r.out[20], 41) << "outer next header IPv6";
  EXPECT_EQ(r.out[21], 64) << "outer hop limit";
  EXPECT_EQ(get16(r.out, 18), inner) << "outer payload length";
  EXPECT_EQ(r.out, expected) << "whole frame";
}

TEST_F(XdpProgTest, KeepsVlanTagsAndIPv4OptionsWhenEncapsulating) {
  const Bytes in = Packet()
                       .Eth(kClientMac, kLbMac)
                       .Vlan(100)
                       .IPv4("10.1.0.7", "10.0.0.10", {1, 1, 1, 0})
                       .TCP(40001, 80, kSyn)
                       .payload(3)
                       .build();
  const auto r = XdpEnv::run(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "retval";
  EXPECT_EQ(get16(r.out, 12), 0x8100) << "tag kept";
  EXPECT_EQ(get16(r.out, 14), 100) << "vlan id kept";
  EXPECT_EQ(r.out, expected_ipip(in, 18, expected_backend("web", "10.1.0.7"), false)) << "frame";
}

// Both tags of a QinQ frame, for an IPv4 and an IPv6 backend: the program copies them from
// where the old header lies after bpf_xdp_adjust_head (20 or 40 bytes further on), so each
// outer family has its own offset to get right. An established flow takes the same path.
TEST_F(XdpProgTest, KeepsBothTagsOfAQinQFrameWhenEncapsulating) {
  const auto qinq = [](uint8_t flags, bool v6) {
    Packet p;
    p.Eth(kClientMac, kLbMac).Vlan(200, 0x88a8).Vlan(100);
    if (v6) {
      p.IPv6("fd00:1::7", "fd00::10");
    } else {
      p.IPv4("10.1.0.8", "10.0.0.10");
    }
    return p.TCP(40007, 80, flags).payload(5).build();
  };
  for (const bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6 in IP6IP6" : "IPv4 in IPIP");
    for (const uint8_t flags : {kSyn, kAck}) {
      const Bytes in = qinq(flags, v6);
      const auto r = XdpEnv::run(in);
      ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "retval, flags " << int{flags};
      if (!v6) {
        EXPECT_EQ(r.out, expected_ipip(in, 22, expected_backend("web", "10.1.0.8"), false))
            << "frame, flags " << int{flags};
        continue;
      }
      // The same packet untagged gives the frame after the tags.
      Bytes untagged(in.begin(), in.begin() + 12);
      untagged.insert(untagged.end(), in.begin() + 20, in.end());
      const auto plain = XdpEnv::run(untagged);
      ASSERT_EQ(plain.retval, static_cast<uint32_t>(XDP_TX)) << "untagged retval";
      Bytes expected(plain.out.begin(), plain.out.begin() + 12);
      expected.insert(expected.end(), in.begin() + 12, in.begin() + 20);  // both tags
      expected.insert(expected.end(), plain.out.begin() + 12, plain.out.end());
      EXPECT_EQ(get16(r.out, 20), 0x86dd) << "outer EtherType after the tags";
      EXPECT_EQ(r.out, expected) << "frame, flags " << int{flags};
    }
  }
}

TEST_F(XdpProgTest, AnswersTooBigIPv4WithFragmentationNeeded) {
  const Bytes in = Packet()
                       .Eth(kClientMac, kLbMac)
                       .IPv4("10.1.0.5", "10.0.0.10")
                       .TCP(40002, 80, kSyn)
                       .payload(1500 - 40)
                       .build();
  ASSERT_EQ(in.size(), 14u + 1500) << "a full-MTU packet";
  const auto r = XdpEnv::run(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "retval";
  ASSERT_EQ(r.out.size(), 14u + 20 + 8 + 68) << "reply length";
  EXPECT_TRUE(std::equal(kClientMac.begin(), kClientMac.end(), r.out.begin()))
      << "to the client MAC";
  EXPECT_TRUE(std::equal(kLbMac.begin(), kLbMac.end(), r.out.begin() + 6)) << "from our MAC";
  EXPECT_EQ(r.out[23], 1) << "protocol ICMP";
  EXPECT_EQ(inet_csum(&r.out[14], 20), 0) << "IP checksum";
  EXPECT_EQ(0, std::memcmp(&r.out[26], &in[30], 4)) << "source is the VIP";
  EXPECT_EQ(0, std::memcmp(&r.out[30], &in[26], 4)) << "destination is the client";
  EXPECT_EQ(r.out[34], 3) << "type destination unreachable";
  EXPECT_EQ(r.out[35], 4) << "code fragmentation needed";
  EXPECT_EQ(get16(r.out, 40), 1500 - 20) << "next-hop MTU leaves room for IPIP";
  EXPECT_EQ(inet_csum(&r.out[34], 8 + 68), 0) << "ICMP checksum";
  EXPECT_EQ(0, std::memcmp(&r.out[42], &in[14], 68)) << "quotes the packet";
}

// A full-MTU IPv4 SYN to web, with DF (the default) or without.
Bytes too_big_v4(uint16_t sport, bool df = true) {
  return Packet()
      .Eth(kClientMac, kLbMac)
      .IPv4("10.1.0.5", "10.0.0.10", {}, df ? 0x4000 : 0)
      .TCP(sport, 80, kSyn)
      .payload(1500 - 40)
      .build();
}

TEST_F(XdpProgTest, TooBigIPv4WithoutDontFragmentIsDroppedAndCounted) {
  const uint64_t before = XdpEnv::verdict_count(RINGLB_V_DROP_TOO_BIG_NO_DF);
  const uint64_t replies = XdpEnv::verdict_count(RINGLB_V_TX_TOO_BIG);
  const auto r = XdpEnv::run(too_big_v4(40010, false));
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(XdpEnv::verdict_count(RINGLB_V_DROP_TOO_BIG_NO_DF), before + 1);
  EXPECT_EQ(XdpEnv::verdict_count(RINGLB_V_TX_TOO_BIG), replies) << "no ICMP for it";
}

// xdp.icmp_too_big_rate 10: a burst of 100 too-big packets gets the burst's 50 replies
// (51: the first one is not ahead of the clock), the rest are dropped and counted; rate 0
// sends none.
TEST_F(XdpProgTest, TooBigRepliesAreRateLimitedPerCpu) {
  for (const uint32_t rate : {10u, 0u}) {
    auto options = lab_load_options(XdpEnv::config());
    options.icmp_too_big_rate = rate;
    auto program = xdp::XdpProgram::load(options);
    ASSERT_TRUE(program) << program.error().message;
    ASSERT_TRUE(program->apply(XdpEnv::config()));
    int replies = 0;
    for (uint16_t i = 0; i < 100; ++i) {
      const auto r = XdpEnv::run_on(program->xdp_fd(), too_big_v4(41000 + i));
      replies += r.retval == XDP_TX ? 1 : 0;
    }
    auto counts = xdp::read_counters(program->map_fd("verdict_stats"), RINGLB_V_MAX);
    ASSERT_TRUE(counts);
    const uint64_t limited = (*counts)[RINGLB_V_DROP_TOO_BIG_LIMITED].packets;
    std::cout << "rate " << rate << "/s: " << replies << " replies, " << limited
              << " limited of 100\n";
    if (rate == 0) {
      EXPECT_EQ(replies, 0);
    } else {
      // 100 runs take well under the 100 ms a new token needs; allow one for a slow VM.
      EXPECT_GE(replies, 51);
      EXPECT_LE(replies, 52);
    }
    EXPECT_EQ((*counts)[RINGLB_V_TX_TOO_BIG].packets, static_cast<uint64_t>(replies));
    EXPECT_EQ(limited, 100u - static_cast<uint64_t>(replies));
  }
}

TEST_F(XdpProgTest, AnswersTooBigIPv6WithPacketTooBig) {
  const Bytes in = Packet()
                       .Eth(kClientMac, kLbMac)
                       .IPv6("fd00:1::5", "fd00::10")
                       .TCP(40003, 80, kSyn)
                       .payload(1500 - 60)
                       .build();
  const auto r = XdpEnv::run(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "retval";
  ASSERT_EQ(r.out.size(), 14u + 40 + 8 + 128) << "reply length";
  EXPECT_EQ(r.out[20], 58) << "next header ICMPv6";
  EXPECT_EQ(0, std::memcmp(&r.out[22], &in[38], 16)) << "source is the VIP";
  EXPECT_EQ(0, std::memcmp(&r.out[38], &in[22], 16)) << "destination is the client";
  EXPECT_EQ(r.out[54], 2) << "type packet too big";
  EXPECT_EQ((uint32_t(get16(r.out, 58)) << 16) | get16(r.out, 60), 1500u - 40) << "MTU";
  uint32_t sum = 0;
  for (size_t i = 22; i < 54; i += 2) {
    sum += get16(r.out, i);
  }
  sum += 58 + 8 + 128;
  EXPECT_EQ(inet_csum(&r.out[54], 8 + 128, sum), 0) << "ICMPv6 checksum";
  EXPECT_EQ(0, std::memcmp(&r.out[62], &in[14], 128)) << "quotes the packet";
}

TEST_F(XdpProgTest, ForwardsIcmpErrorsToTheFlowsBackend) {
  Bytes quote = Packet().IPv4("10.0.0.10", "10.1.0.9").TCP(80, 40000, kAck).build();
  const Bytes in =
      Packet().Eth(kClientMac, kLbMac).IPv4("10.3.0.1", "10.0.0.10").ICMP(3, 1).raw(quote).build();
  const auto r = XdpEnv::run(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "retval";
  EXPECT_EQ(r.out, expected_ipip(in, 14, expected_backend("web", "10.1.0.9"), false))
      << "the ICMP error goes, encapsulated, to the backend of client 10.1.0.9";
}

TEST_F(XdpProgTest, SteersToTheCpuOfTheWorkerOwningTheHash) {
  // Remove worker 1's CPU from the cpumap: clients of worker 1 now fall back to
  // XDP_PASS, clients of worker 0 are still redirected.
  const int cpu_fd = XdpEnv::program().map_fd("cpu_map");
  uint32_t worker1 = 1;
  ASSERT_EQ(bpf_map_delete_elem(cpu_fd, &worker1), 0) << strerror(errno);
  int seen[2] = {0, 0};
  for (int i = 1; i <= 64; ++i) {
    const std::string client = "10.5.0." + std::to_string(i);
    const uint64_t worker =
        client_slot(XdpEnv::config().daemon.hash_key, *IpAddress::parse(client), 2);
    const auto r = XdpEnv::run(v4_syn(client.c_str(), "10.0.0.20", 40000, 8080));
    EXPECT_EQ(r.retval, worker == 0 ? uint32_t{XDP_REDIRECT} : uint32_t{XDP_PASS}) << client;
    ++seen[worker];
  }
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
  bpf_cpumap_val value{};
  value.qsize = 2048;
  ASSERT_EQ(bpf_map_update_elem(cpu_fd, &worker1, &value, BPF_ANY), 0) << strerror(errno);
}

// --- Flows ---------------------------------------------------------------------------

// kConfig with a fourth backend b4 (weight 3) in "web", and a client address whose
// Maglev slot moves to b4 in that grown pool: a flow of that client shows whether it was
// in the flow table (it stays on its old backend) or not (it goes to b4).
struct GrownPool {
  std::string text;
  std::string mover;
};

GrownPool grown_pool() {
  GrownPool grown{.text = std::string(kConfig), .mover = ""};
  const std::string anchor = "[[vip.backend]]\nname = \"b3\"\naddress = \"10.200.0.3\"\n";
  grown.text.insert(grown.text.find(anchor) + anchor.size(),
                    "[[vip.backend]]\nname = \"b4\"\naddress = \"10.200.0.5\"\nweight = 3\n");
  auto config = parse_config(grown.text, "g.toml");
  if (!config) {
    ADD_FAILURE() << config.error().message;
    return grown;
  }
  const VipSpec& web = config->vips[0];
  const auto table = xdp::build_forward_table(web, config->daemon.maglev_table_size);
  for (int i = 1; i < 250 && grown.mover.empty(); ++i) {
    const std::string c = "10.8.0." + std::to_string(i);
    const auto index =
        xdp::forward_backend(web, table, config->daemon.hash_key, *IpAddress::parse(c));
    if (index && web.backends[*index].name == "b4") {
      grown.mover = c;
    }
  }
  return grown;
}

// The outer destination of an encapsulated IPv4 packet.
bool sent_to(const RunResult& r, const IpAddress& backend) {
  return r.retval == XDP_TX && r.out.size() >= 34 &&
         std::memcmp(&r.out[30], backend.bytes(), 4) == 0;
}

TEST_F(XdpProgTest, EstablishedFlowsKeepTheirBackendWhenABackendIsAdded) {
  const std::string base(kConfig);
  const GrownPool grown = grown_pool();
  ASSERT_FALSE(grown.mover.empty()) << "some client moves to b4";
  const char* client = grown.mover.c_str();
  const IpAddress before = expected_backend("web", client);
  const IpAddress b4 = *IpAddress::parse("10.200.0.5");

  EXPECT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45000, 80, kSyn)), before))
      << "SYN goes to the table's backend";
  XdpEnv::apply(grown.text);
  EXPECT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45000, 80, kAck)), before))
      << "established flow stays";
  EXPECT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45001, 80, kSyn)), b4))
      << "a new flow of the same client goes to the new backend";
  XdpEnv::apply(base);
  EXPECT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45001, 80, kAck)), before))
      << "when b4 leaves, its flows go back to the table's backend";
}

TEST_F(XdpProgTest, AClientResetEndsItsFlow) {
  const std::string base(kConfig);
  const GrownPool grown = grown_pool();
  ASSERT_FALSE(grown.mover.empty()) << "some client moves to b4";
  const char* client = grown.mover.c_str();
  const IpAddress before = expected_backend("web", client);
  constexpr uint8_t kRst = 0x04;

  ASSERT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45100, 80, kSyn)), before));
  XdpEnv::apply(grown.text);
  EXPECT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45100, 80, kRst | kAck)), before))
      << "the RST itself goes to the flow's backend";
  EXPECT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45100, 80, kAck)),
                      *IpAddress::parse("10.200.0.5")))
      << "after the RST the tuple is no flow any more: the table decides";
  XdpEnv::apply(base);
}

// With flow_entries = RINGLB_FLOW_WAYS each CPU has one bucket: a new flow in a full
// bucket pushes out the least recently used flow, and only that one.
TEST_F(XdpProgTest, ANewFlowInAFullBucketEvictsTheLeastRecentlyUsed) {
  const GrownPool grown = grown_pool();
  ASSERT_FALSE(grown.mover.empty()) << "some client moves to b4";
  const char* client = grown.mover.c_str();
  const IpAddress before = expected_backend("web", client);
  auto options = lab_load_options(XdpEnv::config());
  options.flow_entries = RINGLB_FLOW_WAYS;
  auto small = xdp::XdpProgram::load(options);
  ASSERT_TRUE(small) << small.error().message;
  ASSERT_TRUE(small->apply(XdpEnv::config()));
  const int fd = small->xdp_fd();
  // used[] has jiffy resolution: a pause between packets orders them.
  const auto next_jiffy = [] { usleep(12'000); };

  const uint16_t first_port = 46000;
  for (uint16_t i = 0; i < RINGLB_FLOW_WAYS; ++i) {
    ASSERT_TRUE(
        sent_to(XdpEnv::run_on(fd, v4_syn(client, "10.0.0.10", first_port + i, 80, kSyn)), before));
    next_jiffy();
  }
  // The first flow is used again: the second is now the least recently used.
  ASSERT_TRUE(
      sent_to(XdpEnv::run_on(fd, v4_syn(client, "10.0.0.10", first_port, 80, kAck)), before));
  next_jiffy();
  const uint16_t newcomer = first_port + RINGLB_FLOW_WAYS;
  ASSERT_TRUE(sent_to(XdpEnv::run_on(fd, v4_syn(client, "10.0.0.10", newcomer, 80, kSyn)), before));

  auto grown_config = parse_config(grown.text, "g.toml");
  ASSERT_TRUE(grown_config);
  ASSERT_TRUE(small->apply(*grown_config));
  const IpAddress b4 = *IpAddress::parse("10.200.0.5");
  for (uint16_t port = first_port; port <= newcomer; ++port) {
    const bool evicted = port == first_port + 1;
    EXPECT_TRUE(sent_to(XdpEnv::run_on(fd, v4_syn(client, "10.0.0.10", port, 80, kAck)),
                        evicted ? b4 : before))
        << "flow from port " << port << (evicted ? " was evicted" : " stayed in the table");
  }
}

TEST_F(XdpProgTest, RemovingAVipRetiresItsEstablishedFlows) {
  const std::string base(kConfig);
  auto r = XdpEnv::run(v6_syn("fd00:1::77", "fd00::10", 46000));
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "SYN creates the flow";
  const Bytes ack = Packet()
                        .Eth(kClientMac, kLbMac)
                        .IPv6("fd00:1::77", "fd00::10")
                        .TCP(46000, 80, kAck)
                        .payload(8)
                        .build();
  r = XdpEnv::run(ack);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "established while the VIP exists";

  // web6 moves to port 81: the VIP on port 80 is gone, its backends stay (now serving
  // port 81), so only the VIP's epoch can retire the flow.
  std::string without = base;
  const size_t at = without.find("listen = \"[fd00::10]:80\"");
  ASSERT_NE(at, std::string::npos);
  without.replace(at, std::strlen("listen = \"[fd00::10]:80\""), "listen = \"[fd00::10]:81\"");
  XdpEnv::apply(without);
  r = XdpEnv::run(ack);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_PASS))
      << "the removed VIP's flow no longer forwards";
  EXPECT_EQ(r.out, ack) << "passes untouched";
  XdpEnv::apply(base);
}

// The program finds VIPs in the VIP index, and in the `vips` hash only those the index
// counts as left out.
TEST_F(XdpProgTest, FindsVipsInTheIndexAndLeftOutOnesInTheHash) {
  const xdp::MapFds maps = XdpEnv::program().map_fds();
  auto index = xdp::read_vip_index(maps);
  ASSERT_TRUE(index) << index.error().message;
  ringlb_vip_key key{};
  inet_pton(AF_INET, "10.0.0.10", &key.addr[0]);
  key.port = htons(80);
  key.proto = IPPROTO_TCP;
  key.family = RINGLB_FAMILY_V4;
  ringlb_vip_info info{};
  ASSERT_EQ(bpf_map_lookup_elem(maps.vips, &key, &info), 0);
  std::vector<ringlb_vip_slot> without = *index;
  size_t found = 0;
  for (uint32_t i = 0; i < RINGLB_VIP_INDEX_SLOTS; ++i) {
    if (std::memcmp(&without[i].key, &key, sizeof(key)) == 0) {
      without[i] = ringlb_vip_slot{};
      ++found;
    }
  }
  ASSERT_EQ(found, 1u) << "web is in the index once";
  // Whatever happens below, the maps are put back.
  struct Restore {
    const xdp::MapFds& maps;
    const std::vector<ringlb_vip_slot>& index;
    const ringlb_vip_key& key;
    const ringlb_vip_info& info;
    ~Restore() {
      EXPECT_TRUE(xdp::install_vip_index(maps, index));
      EXPECT_EQ(bpf_map_update_elem(maps.vips, &key, &info, BPF_ANY), 0);
    }
  } restore{maps, *index, key, info};
  const Bytes syn = v4_syn("10.1.0.5", "10.0.0.10");

  ASSERT_EQ(bpf_map_delete_elem(maps.vips, &key), 0);
  EXPECT_EQ(XdpEnv::run(syn).retval, static_cast<uint32_t>(XDP_TX)) << "found in the index alone";
  ASSERT_EQ(bpf_map_update_elem(maps.vips, &key, &info, BPF_ANY), 0);

  without[RINGLB_VIP_INDEX_SLOTS].info.vip_id = 1;
  ASSERT_TRUE(xdp::install_vip_index(maps, without));
  EXPECT_EQ(XdpEnv::run(syn).retval, static_cast<uint32_t>(XDP_TX))
      << "left out of the index: found in the hash";

  without[RINGLB_VIP_INDEX_SLOTS].info.vip_id = 0;
  ASSERT_TRUE(xdp::install_vip_index(maps, without));
  const uint64_t not_vip = XdpEnv::verdict_count(RINGLB_V_PASS_NOT_VIP);
  EXPECT_EQ(XdpEnv::run(syn).retval, static_cast<uint32_t>(XDP_PASS))
      << "an index that leaves nothing out is the whole truth";
  EXPECT_EQ(XdpEnv::verdict_count(RINGLB_V_PASS_NOT_VIP), not_vip + 1);
}

// --- Fragments ------------------------------------------------------------------------

// A later IPv4 fragment of a TCP datagram from `client` to the web VIP (no ports).
Bytes v4_later_fragment(const char* client) {
  return Packet()
      .Eth(kClientMac, kLbMac)
      .IPv4(client, "10.0.0.10", {}, 0x2000 | 0x00b9)
      .Protocol(6)
      .payload(64)
      .build();
}

// Every fragment of a datagram goes to the Maglev backend of its client, the first (with
// ports) as the later ones (without); fragments never touch the flow table, so a flow's
// entry does not decide them either.
TEST_F(XdpProgTest, FragmentsGoToTheClientsTableBackendAndSkipTheFlowTable) {
  const std::string base(kConfig);
  const GrownPool grown = grown_pool();
  ASSERT_FALSE(grown.mover.empty()) << "some client moves to b4";
  const auto events_before =
      xdp::read_event_counts(XdpEnv::program().map_fd("flow_stats"), RINGLB_FE_MAX);
  ASSERT_TRUE(events_before);
  for (int i = 1; i <= 50; ++i) {
    const std::string client = "10.9.0." + std::to_string(i);
    const IpAddress backend = expected_backend("web", client.c_str());
    const Bytes first = Packet()
                            .Eth(kClientMac, kLbMac)
                            .IPv4(client.c_str(), "10.0.0.10", {}, 0x2000)
                            .TCP(static_cast<uint16_t>(30000 + i), 80, kAck)
                            .payload(64)
                            .build();
    EXPECT_TRUE(sent_to(XdpEnv::run(first), backend)) << client << " first fragment";
    EXPECT_TRUE(sent_to(XdpEnv::run(v4_later_fragment(client.c_str())), backend))
        << client << " later fragment";
  }
  const auto events_after =
      xdp::read_event_counts(XdpEnv::program().map_fd("flow_stats"), RINGLB_FE_MAX);
  ASSERT_TRUE(events_after);
  EXPECT_EQ(*events_after, *events_before) << "fragments made no flow-table entry";

  // A flow on its old backend after the pool grew: its unfragmented packets stay there,
  // its fragments follow the new table, as every fragment of every client does.
  const char* client = grown.mover.c_str();
  const IpAddress before = expected_backend("web", client);
  ASSERT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45200, 80, kSyn)), before));
  XdpEnv::apply(grown.text);
  EXPECT_TRUE(sent_to(XdpEnv::run(v4_syn(client, "10.0.0.10", 45200, 80, kAck)), before));
  EXPECT_TRUE(sent_to(XdpEnv::run(v4_later_fragment(client)), *IpAddress::parse("10.200.0.5")));
  XdpEnv::apply(base);
}

// Fragments are found by address and protocol: two VIPs there (different ports) leave
// them to the kernel, and removing one makes the other take them.
TEST_F(XdpProgTest, FragmentsToAnAddressWithTwoVipsPassUntilOneIsLeft) {
  const std::string base(kConfig);
  std::string two = base;
  const std::string anchor = "[[vip]]\nname = \"empty\"";
  two.insert(two.find(anchor),
             "[[vip]]\nname = \"web2\"\nlisten = \"10.0.0.10:8443\"\nmode = \"forward\"\n"
             "[[vip.backend]]\nname = \"w\"\naddress = \"10.200.0.7\"\n\n");
  XdpEnv::apply(two);
  uint64_t passed = XdpEnv::verdict_count(RINGLB_V_PASS_FRAGMENT);
  auto r = XdpEnv::run(v4_later_fragment("10.1.0.5"));
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_PASS)) << "two TCP VIPs on 10.0.0.10";
  EXPECT_EQ(XdpEnv::verdict_count(RINGLB_V_PASS_FRAGMENT), passed + 1);
  XdpEnv::apply(base);
  r = XdpEnv::run(v4_later_fragment("10.1.0.5"));
  EXPECT_TRUE(sent_to(r, expected_backend("web", "10.1.0.5"))) << "web alone again";
}

// --- Hash parity --------------------------------------------------------------------

TEST_F(XdpProgTest, ProgramAndCppPickTheSameBackendFor100kClients) {
  std::mt19937_64 rng(4);
  const auto& web = XdpEnv::vip("web");
  const auto table = xdp::build_forward_table(web, XdpEnv::config().daemon.maglev_table_size);
  Bytes packet = v4_syn("10.0.0.1", "10.0.0.10");
  int mismatches = 0;
  for (int i = 0; i < 100000; ++i) {
    // Random unicast client addresses, written into a prepared SYN (checksums do not
    // matter to the program).
    uint32_t addr = static_cast<uint32_t>(rng());
    std::memcpy(&packet[26], &addr, 4);
    const auto r = XdpEnv::run(packet);
    ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "client " << i;
    in_addr a{addr};
    const auto index =
        xdp::forward_backend(web, table, XdpEnv::config().daemon.hash_key, IpAddress::v4(a));
    ASSERT_TRUE(index);
    if (std::memcmp(&r.out[30], web.backends[*index].address.ip.bytes(), 4) != 0) {
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(XdpProgTest, ProgramAndCppAgreeForIPv6Clients) {
  std::mt19937_64 rng(6);
  const auto& web6 = XdpEnv::vip("web6");
  const auto table = xdp::build_forward_table(web6, XdpEnv::config().daemon.maglev_table_size);
  Bytes packet = v6_syn("fd00:1::1", "fd00::10");
  int mismatches = 0;
  for (int i = 0; i < 20000; ++i) {
    for (int w = 0; w < 4; ++w) {
      const uint32_t word = static_cast<uint32_t>(rng());
      std::memcpy(&packet[22 + 4 * w], &word, 4);
    }
    const auto r = XdpEnv::run(packet);
    ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX)) << "client " << i;
    in6_addr a{};
    std::memcpy(&a, &packet[22], 16);
    const auto index =
        xdp::forward_backend(web6, table, XdpEnv::config().daemon.hash_key, IpAddress::v6(a));
    ASSERT_TRUE(index);
    if (std::memcmp(&r.out[14 + 24], web6.backends[*index].address.ip.bytes(), 16) != 0) {
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// --- Robustness ---------------------------------------------------------------------

TEST_F(XdpProgTest, EveryTruncationOfValidPacketsPassesUntouched) {
  const std::vector<Bytes> packets = {
      v4_syn("10.1.0.5", "10.0.0.10"),
      v6_syn("fd00:1::5", "fd00::10"),
      Packet()
          .Eth(kClientMac, kLbMac)
          .Vlan(7)
          .IPv4("10.1.0.5", "10.0.0.10", {1, 1, 1, 0})
          .TCP(1, 80, kSyn)
          .build(),
      Packet().Eth(kClientMac, kLbMac).IPv6("fd00:1::5", "fd00::10", {{0, 8}}).UDP(1, 80).build(),
  };
  for (const auto& full : packets) {
    for (size_t len = 14; len < full.size(); ++len) {
      const Bytes cut(full.begin(), full.begin() + len);
      const auto r = XdpEnv::run(cut);
      ASSERT_EQ(r.err, 0) << "length " << len;
      EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_PASS)) << "length " << len;
      EXPECT_EQ(r.out, cut) << "length " << len;
    }
  }
}

TEST_F(XdpProgTest, RandomBytesNeverCrashAndGetADefinedVerdict) {
  std::mt19937_64 rng(1234);
  const Bytes seed = v4_syn("10.1.0.5", "10.0.0.10");
  const uint64_t before_total = [] {
    uint64_t sum = 0;
    for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
      sum += XdpEnv::verdict_count(v);
    }
    return sum;
  }();
  constexpr int kRuns = 20000;
  for (int i = 0; i < kRuns; ++i) {
    Bytes b;
    if (i % 2 == 0) {
      b.resize(14 + rng() % 200);
      for (auto& byte : b) {
        byte = static_cast<uint8_t>(rng());
      }
      if (i % 4 == 0) {
        b[12] = 0x08;  // mostly IPv4 / IPv6 EtherTypes so the parsers get exercised
        b[13] = (i % 8 == 0) ? 0x00 : 0xdd;
        b[12] = (i % 8 == 0) ? 0x08 : 0x86;
      }
    } else {
      b = seed;
      for (int flips = 0; flips < 3; ++flips) {
        b[14 + rng() % (b.size() - 14)] ^= static_cast<uint8_t>(1u << (rng() % 8));
      }
    }
    const auto r = XdpEnv::run(b);
    ASSERT_EQ(r.err, 0) << "run " << i;
    ASSERT_TRUE(r.retval == XDP_PASS || r.retval == XDP_TX || r.retval == XDP_DROP ||
                r.retval == XDP_REDIRECT)
        << "run " << i << " retval " << r.retval;
  }
  uint64_t after_total = 0;
  for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
    after_total += XdpEnv::verdict_count(v);
  }
  EXPECT_EQ(after_total - before_total, static_cast<uint64_t>(kRuns))
      << "every packet counted once";
}

// --- steer mode, socket half ----------------------------------------------------------

TEST_F(XdpProgTest, ReuseportHandsEachClientToTheWorkerOwningItsHash) {
  // Two workers' listeners on one port; ringlb_reuseport must pick client_slot(hash, 2), the
  // worker whose CPU the XDP program steers the client's packets to.
  constexpr int kWorkers = 2;
  constexpr uint16_t kPort = 18080;
  std::vector<UniqueSocket> listeners;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kPort);
  addr.sin_addr.s_addr = ip4("127.0.0.1");
  for (int i = 0; i < kWorkers; ++i) {
    UniqueSocket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_GE(s.fd, 0) << strerror(errno);
    int one = 1;
    ASSERT_EQ(setsockopt(s.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0) << strerror(errno);
    ASSERT_EQ(bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
    ASSERT_EQ(listen(s.fd, 64), 0) << strerror(errno);
    listeners.push_back(std::move(s));
  }
  auto reuseport = xdp::ReuseportProgram::load(kWorkers, XdpEnv::config().daemon.hash_key);
  ASSERT_TRUE(reuseport) << reuseport.error().message;
  for (uint32_t i = 0; i < kWorkers; ++i) {
    ASSERT_TRUE(reuseport->set_worker_socket(i, listeners[i].fd));
  }
  ASSERT_TRUE(reuseport->attach(listeners[0].fd));
  int per_worker[kWorkers] = {0, 0};
  for (int host = 2; host < 42; ++host) {
    const std::string client = "127.0.0." + std::to_string(host);
    const auto owner =
        client_slot(XdpEnv::config().daemon.hash_key, *IpAddress::parse(client), kWorkers);
    for (int attempt = 0; attempt < 3; ++attempt) {  // the same client, again and again
      UniqueSocket c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in local{};
      local.sin_family = AF_INET;
      local.sin_addr.s_addr = ip4(client.c_str());
      ASSERT_EQ(bind(c.fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0)
          << strerror(errno);
      ASSERT_EQ(connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
          << strerror(errno);
      int accepted_by = -1;
      for (int spin = 0; spin < 1000 && accepted_by < 0; ++spin) {
        for (int w = 0; w < kWorkers && accepted_by < 0; ++w) {
          const int fd = accept4(listeners[w].fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (fd >= 0) {
            ::close(fd);
            accepted_by = w;
          }
        }
        if (accepted_by < 0) {
          usleep(1000);
        }
      }
      ASSERT_GE(accepted_by, 0) << client << ": no listener accepted within 1 s";
      EXPECT_EQ(static_cast<uint64_t>(accepted_by), owner) << client << " attempt " << attempt;
      ++per_worker[accepted_by];
    }
  }
  EXPECT_GT(per_worker[0], 0) << "both workers get clients";
  EXPECT_GT(per_worker[1], 0) << "both workers get clients";
}

// --- decap (backends) ---------------------------------------------------------------
//
// One case table for both entry points of the decap program: ringlb_decap on the XDP
// hook and ringlb_decap_tc on clsact ingress (BPF_PROG_TEST_RUN with an skb).

enum class DecapHook { xdp, tc };

std::string decap_hook_name(const ::testing::TestParamInfo<DecapHook>& info) {
  return info.param == DecapHook::xdp ? "xdp" : "tc";
}

// A VLAN tag in front of the outer IP header: TPID and VLAN id.
struct VlanTag {
  uint16_t tpid;
  uint16_t id;
};

// The balancer's tunnel frame (kLbMac -> kPeerMac, `tags`, an outer IPv4 header with
// `options` or an outer IPv6 header) around `inner_ip`, an IP packet from its header on.
// `source`: the outer source, the balancer's (10.99.0.1, fd00:99::1) when empty.
Bytes tunnel(const Bytes& inner_ip, bool outer_v6, const std::vector<VlanTag>& tags = {},
             const Bytes& options = {}, uint16_t frag = 0x4000, const char* source = nullptr) {
  Packet p;
  p.Eth(kLbMac, kPeerMac);
  for (const auto& tag : tags) {
    p.Vlan(tag.id, tag.tpid);
  }
  if (outer_v6) {
    p.IPv6(source != nullptr ? source : "fd00:99::1", "fd00:200::1");
  } else {
    p.IPv4(source != nullptr ? source : "10.99.0.1", "10.200.0.1", options, frag);
  }
  Bytes out = p.raw(inner_ip).build();
  // The builder leaves the protocol of a raw payload 0: name the inner family.
  const size_t l3 = p.l3_offset();
  const uint8_t proto = (inner_ip[0] >> 4) == 6 ? 41 : 4;
  if (outer_v6) {
    out[l3 + 6] = proto;
  } else {
    out[l3 + 9] = proto;
    out[l3 + 10] = out[l3 + 11] = 0;
    const uint16_t csum = inet_csum(&out[l3], (out[l3] & 0xf) * 4);
    out[l3 + 10] = csum >> 8;
    out[l3 + 11] = csum & 0xff;
  }
  return out;
}

// What the backend's stack must see: the tunnel frame's MACs and tags, the inner
// EtherType, the inner packet.
Bytes decapsulated(const Bytes& inner_ip, const std::vector<VlanTag>& tags = {}) {
  Bytes out(kPeerMac.begin(), kPeerMac.end());
  out.insert(out.end(), kLbMac.begin(), kLbMac.end());
  for (const auto& tag : tags) {
    const uint8_t bytes[] = {uint8_t(tag.tpid >> 8), uint8_t(tag.tpid), uint8_t(tag.id >> 8),
                             uint8_t(tag.id)};
    out.insert(out.end(), bytes, bytes + 4);
  }
  const bool v6 = (inner_ip[0] >> 4) == 6;
  out.push_back(v6 ? 0x86 : 0x08);
  out.push_back(v6 ? 0xdd : 0x00);
  out.insert(out.end(), inner_ip.begin(), inner_ip.end());
  return out;
}

// The inner packets: a TCP SYN to a VIP, from its IP header on.
Bytes inner_v4() {
  const Bytes frame = v4_syn("10.1.0.5", "10.0.0.10");
  return Bytes(frame.begin() + 14, frame.end());
}
Bytes inner_v6() {
  const Bytes frame = v6_syn("fd00:1::5", "fd00::10");
  return Bytes(frame.begin() + 14, frame.end());
}

struct DecapExpect {
  Bytes out;
  ringlb_decap_verdict counter;
};

struct DecapCase {
  std::string name;
  Bytes in;
  DecapExpect expect;
  // Where the tc entry point differs: at tc ingress the kernel has taken the VLAN tag
  // out of the frame already, and bpf_skb_adjust_room() cannot shrink a frame that
  // still carries one, so the tc program passes it untouched.
  std::optional<DecapExpect> tc = std::nullopt;
};

std::vector<DecapCase> decap_cases() {
  const Bytes v4 = inner_v4();
  const Bytes v6 = inner_v6();
  const std::vector<VlanTag> vlan = {{0x8100, 100}};
  const std::vector<VlanTag> qinq = {{0x88a8, 7}, {0x8100, 100}};
  const auto untouched = [](const Bytes& in) {
    return DecapExpect{.out = in, .counter = RINGLB_DV_PASS_UNSUPPORTED};
  };
  std::vector<DecapCase> cases = {
      {.name = "ipip", .in = tunnel(v4, false), .expect = {decapsulated(v4), RINGLB_DV_DECAP}},
      {.name = "ip6ip6", .in = tunnel(v6, true), .expect = {decapsulated(v6), RINGLB_DV_DECAP}},
      {.name = "ipv6_in_ipv4",
       .in = tunnel(v6, false),
       .expect = {decapsulated(v6), RINGLB_DV_DECAP}},
      {.name = "ipv4_in_ipv6",
       .in = tunnel(v4, true),
       .expect = {decapsulated(v4), RINGLB_DV_DECAP}},
      {.name = "ipip_outer_options",
       .in = tunnel(v4, false, {}, Bytes{1, 1, 1, 0}),
       .expect = {decapsulated(v4), RINGLB_DV_DECAP}},
      {.name = "ipip_vlan",
       .in = tunnel(v4, false, vlan),
       .expect = {decapsulated(v4, vlan), RINGLB_DV_DECAP}},
      {.name = "ip6ip6_vlan",
       .in = tunnel(v6, true, vlan),
       .expect = {decapsulated(v6, vlan), RINGLB_DV_DECAP}},
      {.name = "ipv4_in_ipv6_qinq",
       .in = tunnel(v4, true, qinq),
       .expect = {decapsulated(v4, qinq), RINGLB_DV_DECAP}},
  };
  for (auto& c : cases) {
    if (c.name.ends_with("vlan") || c.name.ends_with("qinq")) {
      c.tc = untouched(c.in);
    }
  }
  const auto pass = [](std::string name, Bytes in, ringlb_decap_verdict counter) {
    Bytes out = in;
    return DecapCase{.name = std::move(name), .in = std::move(in), .expect = {out, counter}};
  };
  cases.push_back(pass("plain_tcp", v4_syn("10.1.0.5", "10.0.0.10"), RINGLB_DV_PASS));
  cases.push_back(pass("plain_tcp6", v6_syn("fd00:1::5", "fd00::10"), RINGLB_DV_PASS));
  cases.push_back(pass("arp", Packet().Eth(kPeerMac, kLbMac).Arp().build(), RINGLB_DV_PASS));
  cases.push_back(
      pass("ipip_fragment", tunnel(v4, false, {}, {}, 0x2000), RINGLB_DV_PASS_MALFORMED));
  // Total length beyond the frame: the outer header claims more than arrived.
  Bytes short_frame = tunnel(v4, false);
  short_frame.resize(short_frame.size() - 1);
  cases.push_back(pass("ipip_cut_payload", short_frame, RINGLB_DV_PASS_MALFORMED));
  return cases;
}

class DecapTest : public ::testing::TestWithParam<DecapHook> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (CAP_BPF)";
    }
    // The balancers' encapsulation sources (XdpEnv's lb0), as operators allow them.
    auto loaded = xdp::DecapProgram::load(
        {.any = false,
         .prefixes = {*xdp::parse_prefix("10.99.0.0/24"), *xdp::parse_prefix("fd00:99::1")}});
    ASSERT_TRUE(loaded) << loaded.error().message;
    program_.emplace(std::move(*loaded));
  }
  bool tc() const { return GetParam() == DecapHook::tc; }
  // The verdict of a packet that goes on to the stack.
  uint32_t pass() const { return tc() ? TC_ACT_OK : XDP_PASS; }
  RunResult run(const Bytes& packet) {
    RunResult r;
    r.out.resize(packet.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(), .data_out = r.out.data(),
                .data_size_in = static_cast<uint32_t>(packet.size()),
                .data_size_out = static_cast<uint32_t>(r.out.size()), .repeat = 1);
    const int fd = tc() ? program_->tc_fd() : program_->fd();
    r.err = bpf_prog_test_run_opts(fd, &opts) == 0 ? 0 : errno;
    r.retval = opts.retval;
    r.out.resize(opts.data_size_out);
    return r;
  }
  uint64_t count(uint32_t verdict) {
    auto counters = xdp::read_counters(program_->stats_fd(), RINGLB_DV_MAX);
    return counters ? (*counters)[verdict].packets : ~0ull;
  }
  std::optional<xdp::DecapProgram> program_;
};

INSTANTIATE_TEST_SUITE_P(Hooks, DecapTest, ::testing::Values(DecapHook::xdp, DecapHook::tc),
                         decap_hook_name);

TEST_P(DecapTest, EveryCaseGivesItsFrameVerdictAndCounter) {
  for (const auto& c : decap_cases()) {
    const DecapExpect& want = tc() && c.tc ? *c.tc : c.expect;
    const uint64_t before = count(want.counter);
    const auto r = run(c.in);
    ASSERT_EQ(r.err, 0) << c.name;
    EXPECT_EQ(r.retval, pass()) << c.name << " retval";
    EXPECT_EQ(r.out, want.out) << c.name << " frame";
    EXPECT_EQ(count(want.counter), before + 1) << c.name << " counter";
  }
}

TEST_P(DecapTest, ReversesTheBalancersEncapsulationExactly) {
  // The decap program undoes what ringlb_xdp does (the encapsulated bytes are the ones
  // EncapsulatesIPv4InIPIPByteForByte checks).
  const Bytes in = v4_syn("10.1.0.5", "10.0.0.10");
  const Bytes encapsulated = expected_ipip(in, 14, *IpAddress::parse("10.200.0.1"), false);
  const auto r = run(encapsulated);
  ASSERT_EQ(r.retval, pass());
  EXPECT_EQ(r.out, decapsulated(inner_v4()));
}

TEST_P(DecapTest, PassesTruncatedTunnelsUntouched) {
  for (const bool outer_v6 : {false, true}) {
    const Bytes full = tunnel(outer_v6 ? inner_v6() : inner_v4(), outer_v6);
    // BPF_PROG_TEST_RUN refuses (EINVAL) an skb whose IP header is not whole: the tc
    // runs start with the whole outer header and cut the rest.
    const size_t first = tc() ? 14 + (outer_v6 ? 40 : 20) : 14;
    for (size_t len = first; len < full.size(); ++len) {
      const Bytes cut(full.begin(), full.begin() + len);
      const uint64_t decapsulated_before = count(RINGLB_DV_DECAP);
      const auto r = run(cut);
      ASSERT_EQ(r.err, 0) << "length " << len;
      EXPECT_EQ(r.retval, pass()) << "length " << len;
      EXPECT_EQ(r.out, cut) << "length " << len;
      EXPECT_EQ(count(RINGLB_DV_DECAP), decapsulated_before) << "length " << len;
    }
  }
}

TEST_P(DecapTest, TunnelsFromSourcesNotAllowedAreDroppedAndCounted) {
  const uint32_t drop = tc() ? TC_ACT_SHOT : XDP_DROP;
  for (const auto& [outer_v6, source] : {std::pair{false, "10.98.0.7"}, {true, "fd00:99::2"}}) {
    const Bytes in = tunnel(outer_v6 ? inner_v6() : inner_v4(), outer_v6, {}, {}, 0x4000, source);
    const uint64_t before = count(RINGLB_DV_DROP_SOURCE);
    const auto r = run(in);
    ASSERT_EQ(r.err, 0) << source;
    EXPECT_EQ(r.retval, drop) << source;
    EXPECT_EQ(count(RINGLB_DV_DROP_SOURCE), before + 1) << source;
  }
  // --allow-any: the same packets are decapsulated.
  auto any = xdp::DecapProgram::load({.any = true, .prefixes = {}});
  ASSERT_TRUE(any) << any.error().message;
  program_.emplace(std::move(*any));
  const auto r = run(tunnel(inner_v4(), false, {}, {}, 0x4000, "10.98.0.7"));
  EXPECT_EQ(r.retval, pass());
  EXPECT_EQ(r.out, decapsulated(inner_v4()));
}

TEST(DecapAllow, PrefixesParseAndBadOnesAreNamed) {
  const auto v4 = xdp::parse_prefix("192.0.2.0/24");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->length, 24u);
  const auto host = xdp::parse_prefix("2001:db8::1");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length, 128u);
  for (const auto& [text, why] : {std::pair{"10.0.0.1/8", "host bits are set after /8"},
                                  {"10.0.0.0/33", "expected a prefix length in 0..32"},
                                  {"10.0.0.0/", "expected a prefix length"},
                                  {"10.0.0.0/8x", "expected a prefix length"},
                                  {"eth0", "expected an address or a prefix"}}) {
    const auto bad = xdp::parse_prefix(text);
    ASSERT_FALSE(bad) << text;
    EXPECT_NE(bad.error().message.find(why), std::string::npos) << bad.error().message;
  }
}

// --- decap on clsact ingress: attach, replace, detach ------------------------------------

// A veth pair in the test's private namespace (XdpEnv's), removed when the test ends.
class ScopedVeth {
 public:
  ScopedVeth() {
    created_ = sh("ip link add dcp0 type veth peer name dcp1") == 0 &&
               sh("ip link set dcp0 up") == 0 && sh("ip link set dcp1 up") == 0;
  }
  ~ScopedVeth() { sh("ip link del dcp0"); }
  ScopedVeth(const ScopedVeth&) = delete;
  ScopedVeth& operator=(const ScopedVeth&) = delete;
  bool created() const { return created_; }
  int ifindex() const { return static_cast<int>(if_nametoindex("dcp0")); }

 private:
  bool created_ = false;
};

class DecapTcAttachTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = XdpEnv::setup();  // the private network namespace
    if (!reason.empty()) {
      GTEST_SKIP() << reason;
    }
    veth_.emplace();
    ASSERT_TRUE(veth_->created()) << "ip link add dcp0 type veth failed";
    ifindex_ = veth_->ifindex();
  }
  // The program id at (handle, priority) on dcp0's clsact ingress, 0 for none.
  uint32_t filter_at(uint32_t handle, uint32_t priority) const {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
    return bpf_tc_query(&hook, &opts) == 0 ? opts.prog_id : 0;
  }
  uint32_t decap_filter() const { return filter_at(xdp::kDecapTcHandle, xdp::kDecapTcPriority); }
  static bool has_clsact() { return sh("tc qdisc show dev dcp0 | grep -q clsact") == 0; }
  static uint32_t program_id(int fd) {
    bpf_prog_info info{};
    uint32_t length = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &length) == 0 ? info.id : 0;
  }
  // Another tool's tc program (returns TC_ACT_OK), attached at (handle, priority).
  UniqueFd attach_other(uint32_t handle, uint32_t priority) const {
    // r0 = TC_ACT_OK; exit (code, dst_reg, src_reg, off, imm).
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, TC_ACT_OK},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "other_tc", "GPL", insns, 2, nullptr));
    EXPECT_GE(fd.get(), 0) << strerror(errno);
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_, .attach_point = BPF_TC_INGRESS);
    const int created = bpf_tc_hook_create(&hook);
    EXPECT_TRUE(created == 0 || created == -EEXIST) << created;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = fd.get(), .handle = handle, .priority = priority);
    EXPECT_EQ(bpf_tc_attach(&hook, &opts), 0);
    return fd;
  }

  std::optional<ScopedVeth> veth_;
  int ifindex_ = 0;
};

TEST_F(DecapTcAttachTest, AttachCreatesClsactAndAgainReplacesRinglbsFilter) {
  auto first = xdp::DecapProgram::load({.any = true, .prefixes = {}});
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(first->attach_tc(ifindex_)) << "first attach";
  EXPECT_TRUE(has_clsact());
  EXPECT_EQ(decap_filter(), program_id(first->tc_fd()));

  auto second = xdp::DecapProgram::load({.any = true, .prefixes = {}});
  ASSERT_TRUE(second) << second.error().message;
  const auto replaced = second->attach_tc(ifindex_);
  ASSERT_TRUE(replaced) << replaced.error().message;
  EXPECT_EQ(decap_filter(), program_id(second->tc_fd())) << "the second program replaced it";

  auto detached = xdp::detach_decap_tc(ifindex_);
  ASSERT_TRUE(detached) << detached.error().message;
  EXPECT_TRUE(*detached);
  EXPECT_EQ(decap_filter(), 0u);
  EXPECT_FALSE(has_clsact()) << "an empty clsact qdisc that ringlb left";
  detached = xdp::detach_decap_tc(ifindex_);
  ASSERT_TRUE(detached) << detached.error().message;
  EXPECT_FALSE(*detached) << "nothing left to detach";
}

TEST_F(DecapTcAttachTest, DetachLeavesOtherFiltersAndTheirQdisc) {
  const UniqueFd other = attach_other(1, 1);
  auto program = xdp::DecapProgram::load({.any = true, .prefixes = {}});
  ASSERT_TRUE(program) << program.error().message;
  ASSERT_TRUE(program->attach_tc(ifindex_));
  auto detached = xdp::detach_decap_tc(ifindex_);
  ASSERT_TRUE(detached) << detached.error().message;
  EXPECT_TRUE(*detached);
  EXPECT_EQ(decap_filter(), 0u);
  EXPECT_EQ(filter_at(1, 1), program_id(other.get())) << "the other filter stays";
  EXPECT_TRUE(has_clsact()) << "the qdisc stays with the other filter";
}

TEST_F(DecapTcAttachTest, RefusesAnotherProgramAtRinglbsHandle) {
  const UniqueFd other = attach_other(xdp::kDecapTcHandle, xdp::kDecapTcPriority);
  auto program = xdp::DecapProgram::load({.any = true, .prefixes = {}});
  ASSERT_TRUE(program) << program.error().message;
  const auto attached = program->attach_tc(ifindex_);
  ASSERT_FALSE(attached);
  EXPECT_NE(attached.error().message.find("other_tc"), std::string::npos)
      << attached.error().message;
  EXPECT_EQ(decap_filter(), program_id(other.get())) << "left in place";
  auto detached = xdp::detach_decap_tc(ifindex_);
  ASSERT_TRUE(detached) << detached.error().message;
  EXPECT_FALSE(*detached) << "not ringlb's filter";
  EXPECT_EQ(decap_filter(), program_id(other.get()));
}

// --- Flow table size (xdp.flow_entries) ------------------------------------------------

bpf_map_info pinned_info(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (fd.get() < 0 || bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
    return bpf_map_info{};
  }
  return info;
}

uint32_t pinned_max_entries(const std::string& path) {
  return pinned_info(path).max_entries;
}

// A program loaded with its maps pinned in a bpffs of the test's own, removed with it.
class ScratchPins : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (mounts a bpffs and loads the XDP program)";
    }
    bpffs_.emplace();
    if (!bpffs_->mounted()) {
      GTEST_SKIP() << "cannot mount a bpffs: " << strerror(errno);
    }
  }
  // The load options of a one-VIP forward config with `xdp_keys` in [xdp], pinned under
  // the scratch bpffs.
  xdp::LoadOptions pinned_options(const std::string& xdp_keys = "") {
    auto config = parse_config("[xdp]\ninterface = \"lo\"\n" + xdp_keys +
                                   "[[vip]]\nname='w'\nlisten='192.0.2.1:80'\nmode='forward'\n"
                                   "[[vip.backend]]\nname='b'\naddress='192.0.2.2'\n",
                               "t.toml");
    EXPECT_TRUE(config) << config.error().message;
    auto options = config ? xdp::load_options(*config) : xdp::LoadOptions{};
    options.pin_root = bpffs_->path() + "/ringlb";
    return options;
  }

 private:
  std::optional<ScratchBpffs> bpffs_;
};
using XdpFlowEntries = ScratchPins;
using XdpPins = ScratchPins;

TEST_F(XdpFlowEntries, SizeThePinnedTableAndAnotherSizeLaterIsANamedError) {
  auto options = pinned_options("flow_entries = 1024\n");
  const auto cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());
  {
    auto program = xdp::XdpProgram::load(options);
    ASSERT_TRUE(program) << program.error().message;
  }
  // The pins outlive the program, as they outlive `ringlb attach`.
  const std::string flows = options.pin_root + "/flows";
  ASSERT_EQ(pinned_max_entries(flows), 1024 / RINGLB_FLOW_WAYS * cpus) << "buckets of all CPUs";

  options.flow_entries = 4096;
  auto bigger = xdp::XdpProgram::load(options);
  ASSERT_FALSE(bigger) << "a pinned table of another size cannot be reused";
  EXPECT_NE(bigger.error().message.find(
                "holds 1024 flows per CPU; the config asks for 4096 (xdp.flow_entries)"),
            std::string::npos)
      << bigger.error().message;
  EXPECT_EQ(pinned_max_entries(flows), 1024 / RINGLB_FLOW_WAYS * cpus) << "the pins are unchanged";

  options.flow_entries = 1024;
  auto again = xdp::XdpProgram::load(options);
  EXPECT_TRUE(again) << "the same size reuses the pins: " << again.error().message;
}

// Counters pinned by an older ringlb with fewer verdicts: the load replaces them (their
// counts restart) instead of failing on libbpf's parameter mismatch.
TEST_F(XdpPins, OutgrownVerdictCountersAreReplaced) {
  auto options = pinned_options();
  ASSERT_EQ(::mkdir(options.pin_root.c_str(), 0700), 0);
  const std::string path = options.pin_root + "/verdict_stats";
  UniqueFd old(bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "verdict_stats", sizeof(uint32_t),
                              sizeof(ringlb_counter), RINGLB_V_MAX - 2, nullptr));
  ASSERT_TRUE(old.valid());
  ASSERT_EQ(bpf_obj_pin(old.get(), path.c_str()), 0);
  auto program = xdp::XdpProgram::load(options);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(pinned_max_entries(path), static_cast<uint32_t>(RINGLB_V_MAX));
}

// A flow table pinned by a ringlb of the older bucket layout (a tag line, then a 64-byte
// line per flow: 576-byte buckets of 8) is replaced by the load instead of failing on
// libbpf's parameter mismatch; its flows fall back to the Maglev table.
TEST_F(XdpPins, AFlowTableOfTheOlderLayoutIsReplaced) {
  auto options = pinned_options("flow_entries = 1024\n");
  ASSERT_EQ(::mkdir(options.pin_root.c_str(), 0700), 0);
  const std::string path = options.pin_root + "/flows";
  const uint32_t cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());
  constexpr uint32_t kOldBucketSize = 576;
  UniqueFd old(bpf_map_create(BPF_MAP_TYPE_ARRAY, "flows", sizeof(uint32_t), kOldBucketSize,
                              1024 / 8 * cpus, nullptr));
  ASSERT_TRUE(old.valid());
  ASSERT_EQ(bpf_obj_pin(old.get(), path.c_str()), 0);
  auto program = xdp::XdpProgram::load(options);
  ASSERT_TRUE(program) << program.error().message;
  const bpf_map_info info = pinned_info(path);
  EXPECT_EQ(info.value_size, sizeof(ringlb_flow_bucket));
  EXPECT_EQ(info.max_entries, 1024 / RINGLB_FLOW_WAYS * cpus);
}

}  // namespace
}  // namespace ringlb::test
