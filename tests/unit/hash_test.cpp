#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "ringlb/model/client_hash.h"
#include "ringlb/model/siphash.h"
#include "ringlb/policy/policy.h"
#include "ringlb/random.h"

namespace ringlb {
namespace {

constexpr ringlb_hash_key kReferenceKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

// The reference vectors of the SipHash paper (SipHash-2-4, key 00..0f, message 00..n-1)
// check the shared round function and the byte layout.
TEST(SipHash, MatchesReferenceVectorsFor24) {
  uint8_t message[16];
  for (int i = 0; i < 16; ++i) {
    message[i] = static_cast<uint8_t>(i);
  }
  EXPECT_EQ(siphash(kReferenceKey, message, 0, 2, 4), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(siphash(kReferenceKey, message, 1, 2, 4), 0x74f839c593dc67fdULL);
  EXPECT_EQ(siphash(kReferenceKey, message, 8, 2, 4), 0x93f5f5799a932462ULL);
  EXPECT_EQ(siphash(kReferenceKey, message, 15, 2, 4), 0xa129ca6149be45e5ULL);
}

// hash.h's fixed-size forms (what the XDP program runs) equal SipHash-1-3 over the
// address bytes.
TEST(ClientHash, FixedSizeFormsEqualGenericSipHash13) {
  Rng rng(7);
  for (int i = 0; i < 1000; ++i) {
    const ringlb_hash_key key{rng.next(), rng.next()};
    uint8_t bytes[16];
    for (auto& b : bytes) {
      b = static_cast<uint8_t>(rng.next());
    }
    __u32 words[4];
    std::memcpy(words, bytes, 16);
    EXPECT_EQ(ringlb_hash_v4(&key, words[0]), siphash(key, bytes, 4, 1, 3));
    EXPECT_EQ(ringlb_hash_v6(&key, words), siphash(key, bytes, 16, 1, 3));
  }
}

TEST(ClientHash, DependsOnTheKey) {
  const auto ip = IpAddress::parse("198.51.100.7");
  ASSERT_TRUE(ip);
  EXPECT_NE(client_hash({1, 2}, *ip), client_hash({1, 3}, *ip));
  EXPECT_EQ(client_hash({1, 2}, *ip), client_hash({1, 2}, *ip));
}

}  // namespace
}  // namespace ringlb
