// The model's values as the maps hold them (map_codec.h, and vip_key and address_key of
// state_plan.h).
#include "map_codec.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "ringlb/xdp/state_plan.h"

namespace ringlb::xdp {
namespace {

void copy_name(char (&out)[RINGLB_NAME_LEN], const std::string& name) {
  std::memset(out, 0, sizeof(out));
  std::memcpy(out, name.data(), std::min(name.size(), sizeof(out)));
}

std::string name_from(const char (&name)[RINGLB_NAME_LEN]) {
  return std::string(name, strnlen(name, RINGLB_NAME_LEN));
}

uint8_t member_state(AdminState state) {
  switch (state) {
    case AdminState::up:
      return RINGLB_MEMBER_UP;
    case AdminState::drain:
      return RINGLB_MEMBER_DRAIN;
    case AdminState::down:
      return RINGLB_MEMBER_DOWN;
  }
  return RINGLB_MEMBER_DOWN;
}

}  // namespace

ringlb_vip_key vip_key(const VipSpec& vip) {
  ringlb_vip_key key{};
  std::memcpy(key.addr, vip.listen.ip.bytes(), vip.listen.ip.size());
  key.port = htons(vip.listen.port);
  key.proto = vip.protocol == Protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
  key.family = vip.listen.ip.is_v4() ? RINGLB_FAMILY_V4 : RINGLB_FAMILY_V6;
  return key;
}

AddressKey address_key(const IpAddress& address) {
  AddressKey key{address.is_v4() ? RINGLB_FAMILY_V4 : RINGLB_FAMILY_V6, {}};
  std::memcpy(key.second.data(), address.bytes(), address.size());
  return key;
}

IpAddress ip_from(const uint32_t addr[4], uint32_t family) {
  if (family == RINGLB_FAMILY_V4) {
    in_addr a{};
    std::memcpy(&a, addr, 4);
    return IpAddress::v4(a);
  }
  in6_addr a{};
  std::memcpy(&a, addr, 16);
  return IpAddress::v6(a);
}

uint32_t vip_mode(const VipSpec& vip) {
  return vip.mode == Mode::forward ? RINGLB_MODE_FORWARD : RINGLB_MODE_STEER;
}

ringlb_member member_record(const BackendSpec& backend) {
  ringlb_member m{};
  copy_name(m.name, backend.name);
  std::memcpy(m.addr, backend.address.ip.bytes(), backend.address.ip.size());
  m.port = htons(backend.address.port);
  m.family = backend.address.ip.is_v4() ? RINGLB_FAMILY_V4 : RINGLB_FAMILY_V6;
  m.state = member_state(backend.state);
  m.weight = backend.weight;
  return m;
}

BackendSpec backend_from(const ringlb_member& m) {
  BackendSpec b;
  b.name = name_from(m.name);
  b.address = SocketAddress{.ip = ip_from(m.addr, m.family), .port = ntohs(m.port)};
  b.weight = m.weight;
  b.state = m.state == RINGLB_MEMBER_UP      ? AdminState::up
            : m.state == RINGLB_MEMBER_DRAIN ? AdminState::drain
                                             : AdminState::down;
  return b;
}

ringlb_vip_state vip_record(const VipSpec& vip, uint32_t member_count) {
  ringlb_vip_state vs{};
  copy_name(vs.name, vip.name);
  vs.key = vip_key(vip);
  vs.mode = vip_mode(vip);
  vs.backend_count = member_count;
  return vs;
}

VipSpec vip_from(const ringlb_vip_state& vs) {
  VipSpec vip;
  vip.name = name_from(vs.name);
  vip.listen = SocketAddress{.ip = ip_from(vs.key.addr, vs.key.family), .port = ntohs(vs.key.port)};
  vip.protocol = vs.key.proto == IPPROTO_UDP ? Protocol::udp : Protocol::tcp;
  vip.mode = vs.mode == RINGLB_MODE_FORWARD ? Mode::forward : Mode::proxy;
  if (vip.mode == Mode::forward) {
    vip.policy = PolicyKind::ip_hash;
  }
  return vip;
}

}  // namespace ringlb::xdp
