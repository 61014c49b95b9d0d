// IP and socket addresses: parsing, formatting and conversion to sockaddr.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringlb {

enum class Family : uint8_t { ipv4, ipv6 };

// An IPv4 or IPv6 address. Bytes are in network order; an IPv4 address uses the first
// four bytes and leaves the rest zero, so equality and ordering are plain byte compares.
class IpAddress {
 public:
  IpAddress() = default;
  static IpAddress v4(const in_addr& a);
  static IpAddress v6(const in6_addr& a);

  // Parses dotted IPv4 ("192.0.2.1") or IPv6 text ("2001:db8::1"), without brackets.
  static std::optional<IpAddress> parse(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::ipv4; }
  // Network-order bytes: 4 for IPv4, 16 for IPv6.
  const uint8_t* bytes() const { return bytes_.data(); }
  size_t size() const { return is_v4() ? 4 : 16; }
  in_addr to_in_addr() const;
  in6_addr to_in6_addr() const;

  std::string to_string() const;
  auto operator<=>(const IpAddress&) const = default;

 private:
  Family family_ = Family::ipv4;
  std::array<uint8_t, 16> bytes_{};
};

// An address and a port.
struct SocketAddress {
  IpAddress ip;
  uint16_t port = 0;

  // Parses "192.0.2.1:80" or "[2001:db8::1]:80". The port must be 1..65535.
  static std::optional<SocketAddress> parse(std::string_view text);
  static std::optional<SocketAddress> from_sockaddr(const sockaddr* sa, socklen_t len);

  // Fills `out` and returns the length to pass to bind()/connect().
  socklen_t to_sockaddr(sockaddr_storage& out) const;
  std::string to_string() const;
  auto operator<=>(const SocketAddress&) const = default;
};

}  // namespace ringlb
