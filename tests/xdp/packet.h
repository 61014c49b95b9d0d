// A packet builder for BPF_PROG_TEST_RUN tests (in the form of Katran's test fixtures):
//
//   auto bytes = Packet().Eth(kSrcMac, kDstMac).IPv4("10.1.0.5", "10.0.0.10")
//                    .TCP(40000, 80, kSyn).payload(32).build();
//
// Lengths and checksums (IPv4 header, TCP/UDP/ICMP) are filled in by build(), computed
// here independently of the BPF code.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ringlb::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kAck = 0x10;

inline uint32_t ip4(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return a.s_addr;
}

inline std::array<uint8_t, 16> ip6(const char* text) {
  std::array<uint8_t, 16> a{};
  inet_pton(AF_INET6, text, a.data());
  return a;
}

// Internet checksum of `data` with `sum` as the running value.
inline uint16_t inet_csum(const uint8_t* data, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) {
    sum += (data[i] << 8) | data[i + 1];
  }
  if (len % 2 != 0) {
    sum += data[len - 1] << 8;
  }
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

class Packet {
 public:
  Packet& Eth(const Mac& src, const Mac& dst) {
    has_eth_ = true;
    put(dst.data(), 6);
    put(src.data(), 6);
    type_off_ = bytes_.size();
    put16(0);  // EtherType, set by the next layer
    return *this;
  }
  // An 802.1Q (or, with tpid 0x88a8, 802.1ad) tag.
  Packet& Vlan(uint16_t id, uint16_t tpid = 0x8100) {
    set16(type_off_, tpid);
    put16(id);
    type_off_ = bytes_.size();
    put16(0);
    return *this;
  }
  Packet& Arp() {
    set16(type_off_, 0x0806);
    bytes_.resize(bytes_.size() + 28, 0);
    return *this;
  }
  // IPv4 with `options` (a multiple of 4 bytes) and the given flags / fragment offset.
  Packet& IPv4(const char* src, const char* dst, Bytes options = {}, uint16_t frag = 0x4000,
               uint8_t ttl = 64, uint8_t tos = 0) {
    set_type(0x0800);
    l3_off_ = bytes_.size();
    v6_ = false;
    put8(0x40 | static_cast<uint8_t>(5 + options.size() / 4));
    put8(tos);
    put16(0);  // total length
    put16(0x1234);
    put16(frag);
    put8(ttl);
    proto_off_ = bytes_.size();
    put8(0);
    put16(0);  // checksum
    put32n(ip4(src));
    put32n(ip4(dst));
    put(options.data(), options.size());
    l4_off_ = bytes_.size();
    return *this;
  }
  // IPv6; `ext` is a chain of extension headers as (type, length in bytes) pairs, each a
  // multiple of 8 bytes; a fragment header (44) is 8 bytes.
  Packet& IPv6(const char* src, const char* dst, std::vector<std::pair<uint8_t, size_t>> ext = {}) {
    set_type(0x86dd);
    l3_off_ = bytes_.size();
    v6_ = true;
    put32(0x60000000);
    put16(0);  // payload length
    proto_off_ = bytes_.size();
    put8(0);
    put8(64);
    const auto s = ip6(src);
    const auto d = ip6(dst);
    put(s.data(), 16);
    put(d.data(), 16);
    for (const auto& [type, len] : ext) {
      bytes_[proto_off_] = type;
      proto_off_ = bytes_.size();
      put8(0);
      put8(type == 44 ? 0 : static_cast<uint8_t>(len / 8 - 1));
      bytes_.resize(bytes_.size() + len - 2, type == 1 ? 0 : 0);
    }
    l4_off_ = bytes_.size();
    return *this;
  }
  Packet& TCP(uint16_t sport, uint16_t dport, uint8_t flags) {
    proto(6);
    put16(sport);
    put16(dport);
    put32(1000);
    put32(flags & kAck ? 2000 : 0);
    put8(0x50);
    put8(flags);
    put16(65535);
    put16(0);
    put16(0);
    return *this;
  }
  Packet& UDP(uint16_t sport, uint16_t dport) {
    proto(17);
    put16(sport);
    put16(dport);
    put16(0);
    put16(0);
    return *this;
  }
  // An ICMP (or, after IPv6(), ICMPv6) header; `rest` is the 4 bytes after the checksum.
  Packet& ICMP(uint8_t type, uint8_t code, uint32_t rest = 0) {
    proto(v6_ ? 58 : 1);
    put8(type);
    put8(code);
    put16(0);
    put32(rest);
    return *this;
  }
  // The IP header's protocol (or last next header) alone, without a transport header: a
  // later fragment's.
  Packet& Protocol(uint8_t p) {
    bytes_[proto_off_] = p;
    return *this;
  }
  // Raw bytes (e.g. a quoted packet inside an ICMP error).
  Packet& raw(const Bytes& data) {
    put(data.data(), data.size());
    return *this;
  }
  Packet& payload(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      put8(static_cast<uint8_t>('a' + i % 26));
    }
    return *this;
  }

  Bytes build() const {
    Bytes out = bytes_;
    const size_t l3_len = out.size() - l3_off_;
    if (!v6_) {
      set16(out, l3_off_ + 2, static_cast<uint16_t>(l3_len));
      const size_t ihl = (out[l3_off_] & 0xf) * 4;
      set16(out, l3_off_ + 10, 0);
      set16(out, l3_off_ + 10, inet_csum(&out[l3_off_], ihl));
    } else {
      set16(out, l3_off_ + 4, static_cast<uint16_t>(l3_len - 40));
    }
    const size_t l4_len = out.size() - l4_off_;
    size_t csum_at = 0;
    bool pseudo = true;
    if (l4_proto_ == 6) {
      csum_at = l4_off_ + 16;
    } else if (l4_proto_ == 17) {
      csum_at = l4_off_ + 6;
      set16(out, l4_off_ + 4, static_cast<uint16_t>(l4_len));
    } else if (l4_proto_ == 1 || l4_proto_ == 58) {
      csum_at = l4_off_ + 2;
      pseudo = l4_proto_ == 58;
    } else {
      return out;
    }
    uint32_t sum = 0;
    if (pseudo) {
      const size_t addr_off = v6_ ? l3_off_ + 8 : l3_off_ + 12;
      const size_t addr_len = v6_ ? 32 : 8;
      for (size_t i = 0; i < addr_len; i += 2) {
        sum += (out[addr_off + i] << 8) | out[addr_off + i + 1];
      }
      sum += l4_proto_;
      sum += static_cast<uint32_t>(l4_len);
    }
    set16(out, csum_at, 0);
    uint16_t c = inet_csum(&out[l4_off_], l4_len, sum);
    if (c == 0 && l4_proto_ == 17) {
      c = 0xffff;
    }
    set16(out, csum_at, c);
    return out;
  }

  size_t l3_offset() const { return l3_off_; }

 private:
  // The EtherType of the previous layer; an IP packet without Eth() (a quoted packet in an
  // ICMP error) has none.
  void set_type(uint16_t type) {
    if (has_eth_) {
      set16(type_off_, type);
    }
  }
  void proto(uint8_t p) {
    l4_proto_ = p;
    bytes_[proto_off_] = p;
    l4_off_ = bytes_.size();
  }
  void put(const uint8_t* p, size_t n) { bytes_.insert(bytes_.end(), p, p + n); }
  void put8(uint8_t v) { bytes_.push_back(v); }
  void put16(uint16_t v) {
    put8(v >> 8);
    put8(v & 0xff);
  }
  void put32(uint32_t v) {
    put16(v >> 16);
    put16(v & 0xffff);
  }
  void put32n(uint32_t network_order) { put(reinterpret_cast<uint8_t*>(&network_order), 4); }
  void set16(size_t off, uint16_t v) { set16(bytes_, off, v); }
  static void set16(Bytes& b, size_t off, uint16_t v) {
    b[off] = v >> 8;
    b[off + 1] = v & 0xff;
  }

  Bytes bytes_;
  size_t type_off_ = 0;
  size_t l3_off_ = 0;
  size_t l4_off_ = 0;
  size_t proto_off_ = 0;
  uint8_t l4_proto_ = 0;
  bool v6_ = false;
  bool has_eth_ = false;
};

}  // namespace ringlb::test
