#include "ringlb/model/siphash.h"

#include <cstring>

namespace ringlb {

uint64_t siphash(const ringlb_hash_key& key, const void* data, size_t len, int c_rounds,
                 int d_rounds) {
  ringlb_sip_state s;
  ringlb_sip_init(&s, &key);
  const auto* p = static_cast<const uint8_t*>(data);
  auto compress = [&](uint64_t m) {
    s.v3 ^= m;
    for (int i = 0; i < c_rounds; ++i) {
      ringlb_sip_round(&s);
    }
    s.v0 ^= m;
  };
  size_t left = len;
  for (; left >= 8; left -= 8, p += 8) {
    uint64_t m = 0;
    for (int i = 0; i < 8; ++i) {
      m |= static_cast<uint64_t>(p[i]) << (8 * i);  // little-endian, as SipHash defines
    }
    compress(m);
  }
  uint64_t last = static_cast<uint64_t>(len & 0xff) << 56;
  for (size_t i = 0; i < left; ++i) {
    last |= static_cast<uint64_t>(p[i]) << (8 * i);
  }
  compress(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < d_rounds; ++i) {
    ringlb_sip_round(&s);
  }
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace ringlb
