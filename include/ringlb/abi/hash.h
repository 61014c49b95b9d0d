/* SPDX-License-Identifier: MIT */
/*
 * The client hash shared by the XDP program (bpf/) and the proxy (src/).
 *
 * Both data planes map a client address to a Maglev slot with
 *
 *     slot = ringlb_reduce(ringlb_hash_v4(key, addr), table_size)      (IPv4)
 *     slot = ringlb_reduce(ringlb_hash_v6(key, addr), table_size)      (IPv6)
 *
 * so a client lands on the same backend whichever plane serves it. The hash is
 * SipHash-1-3 keyed with a 128-bit secret (`hash_seed` in the config): without the
 * key an attacker cannot choose client addresses that all land on one backend. The
 * key must be the same on every balancer host of a VIP so that ECMP can move a flow
 * between hosts without moving it between backends.
 *
 * Input is the address as it sits in the packet (network byte order), loaded into
 * 32-bit words with a native load; user space must pass the same bytes. Parity between
 * this header compiled for BPF and for the host is checked by tests/bpf.
 *
 * This header is plain C with <linux/types.h> types so that clang -target bpf and
 * g++ compile the same text.
 */
#ifndef RINGLB_HASH_H
#define RINGLB_HASH_H

#include <linux/types.h>

#ifdef __bpf__
#define RINGLB_HASH_INLINE static __always_inline
#else
#define RINGLB_HASH_INLINE static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The 128-bit SipHash key, from the config's hash_seed. */
struct ringlb_hash_key {
  __u64 k0;
  __u64 k1;
};

RINGLB_HASH_INLINE __u64 ringlb_rotl64(__u64 x, int b) {
  return (x << b) | (x >> (64 - b));
}

struct ringlb_sip_state {
  __u64 v0, v1, v2, v3;
};

RINGLB_HASH_INLINE void ringlb_sip_round(struct ringlb_sip_state* s) {
  s->v0 += s->v1;
  s->v1 = ringlb_rotl64(s->v1, 13);
  s->v1 ^= s->v0;
  s->v0 = ringlb_rotl64(s->v0, 32);
  s->v2 += s->v3;
  s->v3 = ringlb_rotl64(s->v3, 16);
  s->v3 ^= s->v2;
  s->v0 += s->v3;
  s->v3 = ringlb_rotl64(s->v3, 21);
  s->v3 ^= s->v0;
  s->v2 += s->v1;
  s->v1 = ringlb_rotl64(s->v1, 17);
  s->v1 ^= s->v2;
  s->v2 = ringlb_rotl64(s->v2, 32);
}

RINGLB_HASH_INLINE void ringlb_sip_init(struct ringlb_sip_state* s,
                                        const struct ringlb_hash_key* key) {
  s->v0 = key->k0 ^ 0x736f6d6570736575ULL;
  s->v1 = key->k1 ^ 0x646f72616e646f6dULL;
  s->v2 = key->k0 ^ 0x6c7967656e657261ULL;
  s->v3 = key->k1 ^ 0x7465646279746573ULL;
}

/* One compression round (SipHash-1-3: c = 1). */
RINGLB_HASH_INLINE void ringlb_sip_compress(struct ringlb_sip_state* s, __u64 m) {
  s->v3 ^= m;
  ringlb_sip_round(s);
  s->v0 ^= m;
}

/* Finalization (SipHash-1-3: d = 3). */
RINGLB_HASH_INLINE __u64 ringlb_sip_finish(struct ringlb_sip_state* s) {
  s->v2 ^= 0xff;
  ringlb_sip_round(s);
  ringlb_sip_round(s);
  ringlb_sip_round(s);
  return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/*
 * SipHash-1-3 of the 4 address bytes. `addr` is the IPv4 address in network byte
 * order as loaded from the packet (struct iphdr's saddr).
 */
RINGLB_HASH_INLINE __u64 ringlb_hash_v4(const struct ringlb_hash_key* key, __u32 addr) {
  struct ringlb_sip_state s;

  ringlb_sip_init(&s, key);
  /* Last (only) block: 4 message bytes, length in the top byte. */
  ringlb_sip_compress(&s, ((__u64)4 << 56) | (__u64)addr);
  return ringlb_sip_finish(&s);
}

/*
 * SipHash-1-3 of the 16 address bytes. `addr` holds the IPv6 address in network byte
 * order as four native 32-bit loads (struct in6_addr's s6_addr32).
 */
RINGLB_HASH_INLINE __u64 ringlb_hash_v6(const struct ringlb_hash_key* key, const __u32 addr[4]) {
  struct ringlb_sip_state s;

  ringlb_sip_init(&s, key);
  ringlb_sip_compress(&s, (__u64)addr[0] | ((__u64)addr[1] << 32));
  ringlb_sip_compress(&s, (__u64)addr[2] | ((__u64)addr[3] << 32));
  /* Final block: no message bytes left, length 16 in the top byte. */
  ringlb_sip_compress(&s, (__u64)16 << 56);
  return ringlb_sip_finish(&s);
}

/*
 * Maps a hash onto [0, n) without a division: the top 32 bits, scaled by n (Lemire's
 * multiply-shift). Slots, steer workers and policies all reduce a client hash this way.
 */
RINGLB_HASH_INLINE __u32 ringlb_reduce(__u64 hash, __u32 n) {
  return (__u32)(((hash >> 32) * (__u64)n) >> 32);
}

#ifdef __cplusplus
}
#endif

#endif /* RINGLB_HASH_H */
