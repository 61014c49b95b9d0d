#include "ringlb/model/client_hash.h"

#include <cstring>

namespace ringlb {

uint64_t client_hash(const ringlb_hash_key& key, const IpAddress& address) {
  // The same words the XDP program loads from the packet: native loads of
  // network-order bytes.
  __u32 words[4];
  std::memcpy(words, address.bytes(), address.size());
  if (address.is_v4()) {
    return ringlb_hash_v4(&key, words[0]);
  }
  return ringlb_hash_v6(&key, words);
}

}  // namespace ringlb
