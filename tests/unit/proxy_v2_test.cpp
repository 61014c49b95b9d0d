// The PROXY protocol v2 encoder against the bytes of haproxy.org's proxy-protocol.txt,
// section 2.2, without sockets.
#include "proxy/proxy_v2.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace ringlb::proxy {
namespace {

SocketAddress address(const char* text) {
  auto a = SocketAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SocketAddress{});
}

std::vector<uint8_t> encode(const char* client, const char* vip) {
  std::array<uint8_t, kProxyV2MaxBytes> out{};
  const size_t size = encode_proxy_v2(address(client), address(vip), out);
  return {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(size)};
}

// The 12-byte signature, then version 2 with the PROXY command (0x21).
const std::vector<uint8_t> kPrefix = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
                                      0x51, 0x55, 0x49, 0x54, 0x0A, 0x21};

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> all;
  for (const auto& part : parts) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

TEST(ProxyV2, Ipv4HeaderIsSignatureCommandFamilyLengthAddressesPorts) {
  const std::vector<uint8_t> expected = concat({
      kPrefix,
      {0x11},             // TCP over IPv4
      {0x00, 0x0C},       // 12 address bytes follow
      {192, 0, 2, 1},     // source: the client
      {198, 51, 100, 7},  // destination: the VIP
      {0xDC, 0x04},       // source port 56324
      {0x01, 0xBB},       // destination port 443
  });
  EXPECT_EQ(encode("192.0.2.1:56324", "198.51.100.7:443"), expected);
  EXPECT_EQ(expected.size(), 28u);
}

TEST(ProxyV2, Ipv6HeaderCarriesBothSixteenByteAddresses) {
  const std::vector<uint8_t> expected = concat({
      kPrefix,
      {0x21},                                                        // TCP over IPv6
      {0x00, 0x24},                                                  // 36 address bytes follow
      {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},  // 2001:db8::1
      {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},  // 2001:db8::2
      {0x04, 0xD2},                                                  // source port 1234
      {0x00, 0x50},                                                  // destination port 80
  });
  EXPECT_EQ(encode("[2001:db8::1]:1234", "[2001:db8::2]:80"), expected);
  EXPECT_EQ(expected.size(), kProxyV2MaxBytes);
}

TEST(ProxyV2, MixedFamiliesEncodeNothing) {
  std::array<uint8_t, kProxyV2MaxBytes> out;
  out.fill(0xAA);
  EXPECT_EQ(encode_proxy_v2(address("192.0.2.1:1000"), address("[2001:db8::2]:80"), out), 0u);
  EXPECT_EQ(encode_proxy_v2(address("[2001:db8::1]:1000"), address("198.51.100.7:80"), out), 0u);
  for (uint8_t byte : out) {
    EXPECT_EQ(byte, 0xAA);
  }
}

}  // namespace
}  // namespace ringlb::proxy
