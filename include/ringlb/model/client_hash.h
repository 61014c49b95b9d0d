// Client hashing, the model's one definition: which Maglev slot and which steer worker a
// client address maps to. The XDP program computes the same (include/ringlb/abi/hash.h),
// so the proxy's ip_hash, the XDP data plane and `ringlb which` agree on every client.
#pragma once

#include <cstdint>

#include "ringlb/abi/hash.h"
#include "ringlb/model/address.h"

namespace ringlb {

// The client hash of hash.h (SipHash-1-3 of the address bytes), as the XDP program
// computes it.
uint64_t client_hash(const ringlb_hash_key& key, const IpAddress& address);

// The client's slot among `n` (Maglev slot, steer worker): ringlb_reduce of its hash,
// the same computation as the XDP program's.
inline uint32_t client_slot(const ringlb_hash_key& key, const IpAddress& address, uint32_t n) {
  return ringlb_reduce(client_hash(key, address), n);
}

}  // namespace ringlb
