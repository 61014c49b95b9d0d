/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The client hash: ringlb_hash() (include/ringlb/abi/hash.h) of the client address under
 * the loader's SipHash key. Forward mode's Maglev slot and steer mode's worker both come
 * from it, as the proxy's ip_hash does; the flow table keys its buckets with the same key.
 */
#ifndef RINGLB_BPF_CLIENT_HASH_H
#define RINGLB_BPF_CLIENT_HASH_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ringlb/abi/hash.h"
#include "ringlb/abi/xdp_abi.h"

/* Set by the loader before load; the verifier sees them as constants. */
/* The SipHash key (struct ringlb_hash_key), as two words: skeletons know no structs. */
const volatile __u64 hash_key_k0 = 0;
const volatile __u64 hash_key_k1 = 0;

static __always_inline __u64 client_hash(const __u32 *client, __u8 family)
{
	struct ringlb_hash_key key = {.k0 = hash_key_k0, .k1 = hash_key_k1};

	if (family == RINGLB_FAMILY_V4)
		return ringlb_hash_v4(&key, client[0]);
	return ringlb_hash_v6(&key, client);
}

#endif /* RINGLB_BPF_CLIENT_HASH_H */
