// The PROXY protocol v2 header (haproxy.org's proxy-protocol.txt, section 2.2): the
// client's address and the VIP's, which a backend that asked for them (send_proxy_v2)
// reads before any client byte. A pure function: no sockets, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ringlb/model/address.h"

namespace ringlb::proxy {

// The longest header: 16 fixed bytes and two IPv6 addresses with their ports.
inline constexpr size_t kProxyV2MaxBytes = 16 + 36;

// Writes the header of a TCP connection from `client` to `vip` (the PROXY command) into
// `out` and returns its length: 28 bytes for IPv4, 52 for IPv6. Returns 0, writing
// nothing, when the two addresses are not of one family (v2 has no mixed form).
size_t encode_proxy_v2(const SocketAddress& client, const SocketAddress& vip,
                       std::span<uint8_t, kProxyV2MaxBytes> out);

}  // namespace ringlb::proxy
