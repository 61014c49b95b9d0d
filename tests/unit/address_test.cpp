#include <gtest/gtest.h>

#include "ringlb/model/address.h"

namespace ringlb {
namespace {

TEST(SocketAddress, ParsesIpv4WithPort) {
  auto a = SocketAddress::parse("192.0.2.1:8080");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->ip.is_v4());
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->to_string(), "192.0.2.1:8080");
}

TEST(SocketAddress, ParsesBracketedIpv6WithPort) {
  auto a = SocketAddress::parse("[2001:db8::1]:443");
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->ip.is_v4());
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->to_string(), "[2001:db8::1]:443");
}

TEST(SocketAddress, RejectsMalformedText) {
  for (const char* bad : {"", "192.0.2.1", "192.0.2.1:", "192.0.2.1:0", "192.0.2.1:65536",
                          "192.0.2.1:80x", "2001:db8::1:80", "[2001:db8::1]", "[192.0.2.1]:80",
                          "host:80", "256.0.0.1:80", "[2001:db8::1]80", ":80"}) {
    EXPECT_FALSE(SocketAddress::parse(bad).has_value()) << bad;
  }
}

TEST(SocketAddress, RoundTripsThroughSockaddr) {
  for (const char* text : {"127.0.0.1:9001", "[::1]:9002"}) {
    auto a = SocketAddress::parse(text);
    ASSERT_TRUE(a.has_value());
    sockaddr_storage storage;
    const socklen_t len = a->to_sockaddr(storage);
    auto back = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), len);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, *a) << text;
  }
}

TEST(IpAddress, OrdersAndComparesByFamilyAndBytes) {
  auto a = IpAddress::parse("10.0.0.1");
  auto b = IpAddress::parse("10.0.0.2");
  auto c = IpAddress::parse("::1");
  ASSERT_TRUE(a && b && c);
  EXPECT_LT(*a, *b);
  EXPECT_NE(*a, *c);
  EXPECT_EQ(*a, *IpAddress::parse("10.0.0.1"));
}

}  // namespace
}  // namespace ringlb
