#include "ringlb/model/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ringlb {

IpAddress IpAddress::v4(const in_addr& a) {
  IpAddress ip;
  ip.family_ = Family::ipv4;
  std::memcpy(ip.bytes_.data(), &a, 4);
  return ip;
}

IpAddress IpAddress::v6(const in6_addr& a) {
  IpAddress ip;
  ip.family_ = Family::ipv6;
  std::memcpy(ip.bytes_.data(), &a, 16);
  return ip;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a terminated string; addresses are short.
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) {
    return std::nullopt;
  }
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  in_addr a4;
  if (inet_pton(AF_INET, buf, &a4) == 1) {
    return v4(a4);
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, buf, &a6) == 1) {
    return v6(a6);
  }
  return std::nullopt;
}

in_addr IpAddress::to_in_addr() const {
  in_addr a;
  std::memcpy(&a, bytes_.data(), 4);
  return a;
}

in6_addr IpAddress::to_in6_addr() const {
  in6_addr a;
  std::memcpy(&a, bytes_.data(), 16);
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf));
  return buf;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return std::nullopt;  // IPv6 needs brackets
    }
  }
  auto ip = IpAddress::parse(host);
  if (!ip) {
    return std::nullopt;
  }
  if (text.front() == '[' && ip->is_v4()) {
    return std::nullopt;
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  return SocketAddress{*ip, static_cast<uint16_t>(port)};
}

std::optional<SocketAddress> SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    return SocketAddress{IpAddress::v4(sin->sin_addr), ntohs(sin->sin_port)};
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return SocketAddress{IpAddress::v6(sin6->sin6_addr), ntohs(sin6->sin6_port)};
  }
  return std::nullopt;
}

socklen_t SocketAddress::to_sockaddr(sockaddr_storage& out) const {
  std::memset(&out, 0, sizeof(out));
  if (ip.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = ip.to_in_addr();
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = ip.to_in6_addr();
  return sizeof(sockaddr_in6);
}

std::string SocketAddress::to_string() const {
  if (ip.is_v4()) {
    return ip.to_string() + ":" + std::to_string(port);
  }
  return "[" + ip.to_string() + "]:" + std::to_string(port);
}

}  // namespace ringlb
