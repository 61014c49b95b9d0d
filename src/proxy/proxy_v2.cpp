#include "proxy_v2.h"

#include <arpa/inet.h>

#include <cstring>

namespace ringlb::proxy {

size_t encode_proxy_v2(const SocketAddress& client, const SocketAddress& vip,
                       std::span<uint8_t, kProxyV2MaxBytes> out) {
  if (vip.ip.family() != client.ip.family()) {
    return 0;
  }
  uint8_t* header = out.data();
  static constexpr uint8_t kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                             0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  std::memcpy(header, kSignature, 12);
  header[12] = 0x21;  // version 2, PROXY command
  const bool v4 = vip.ip.is_v4();
  header[13] = v4 ? 0x11 : 0x21;  // TCP over IPv4 / IPv6
  const size_t address_bytes = v4 ? 12 : 36;
  header[14] = 0;
  header[15] = static_cast<uint8_t>(address_bytes);
  const size_t ip_size = client.ip.size();
  uint8_t* p = header + 16;
  std::memcpy(p, client.ip.bytes(), ip_size);
  std::memcpy(p + ip_size, vip.ip.bytes(), ip_size);
  const uint16_t ports[2] = {htons(client.port), htons(vip.port)};
  std::memcpy(p + 2 * ip_size, ports, 4);
  return 16 + address_bytes;
}

}  // namespace ringlb::proxy
