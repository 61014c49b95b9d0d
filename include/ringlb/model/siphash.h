// SipHash over arbitrary bytes, for user space only (the XDP program hashes addresses
// with the fixed-size forms in hash.h, which this function reproduces).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlb/abi/hash.h"

namespace ringlb {

// SipHash-c-d of `len` bytes at `data`. siphash(key, p, n, 1, 3) equals hash.h's
// ringlb_hash_v4/v6 on the same address bytes (on a little-endian host).
uint64_t siphash(const ringlb_hash_key& key, const void* data, size_t len, int c_rounds = 1,
                 int d_rounds = 3);

inline uint64_t siphash(const ringlb_hash_key& key, std::string_view text) {
  return siphash(key, text.data(), text.size());
}

}  // namespace ringlb
