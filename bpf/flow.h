/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The forward-mode flow table (struct ringlb_flow_bucket in the `flows` map): each CPU
 * owns flow_buckets consecutive buckets of RINGLB_FLOW_WAYS slots.
 */
#ifndef RINGLB_BPF_FLOW_H
#define RINGLB_BPF_FLOW_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "client_hash.h"
#include "helpers.h"
#include "maps.h"
#include "ringlb/abi/xdp_abi.h"

/* Buckets per CPU in `flows` (a power of two; the loader sizes the map to match). */
const volatile __u32 flow_buckets = RINGLB_DEFAULT_FLOW_ENTRIES / RINGLB_FLOW_WAYS;

/*
 * The last word of a flow key, built in a register so that it is stored whole (see
 * vip_key_tail in ringlb.bpf.c).
 */
static __always_inline __u64 flow_key_tail(__u16 sport, __u16 dport, __u8 proto, __u8 family)
{
	struct ringlb_flow_key k = {
	    .sport = sport, .dport = dport, .proto = proto, .family = family};
	__u64 w;

	__builtin_memcpy(&w, &k.sport, sizeof(w));
	return w;
}

/*
 * The flow table (struct ringlb_flow_bucket). The bucket index and the tag are a keyed
 * multiply-xor hash of the 5-tuple: cheap, and without the key a client cannot aim its
 * flows at one bucket to push other flows out.
 *
 * An IPv4 key's address words past the first are 0 (every key is built in a zeroed struct
 * and only src[0] and dst[0] set), so with `v4` set the hash and the compare leave key
 * words 1 and 3 out: the same hash, fewer loads. The family is in word 4, so an IPv4 key
 * never equals an IPv6 one.
 */
static __always_inline struct ringlb_flow_bucket *flow_bucket_as(const struct ringlb_flow_key *k,
								 __u32 *tag, int v4)
{
	const __u64 *w = (const __u64 *)k;
	__u64 h, upper = v4 ? 0 : w[1] ^ w[3];
	__u32 index;

	h = (w[0] ^ w[2] ^ hash_key_k0) * 0x9e3779b97f4a7c15ULL;
	h ^= (upper ^ w[4] ^ hash_key_k1) * 0xc2b2ae3d27d4eb4fULL;
	h ^= h >> 29;
	*tag = (__u32)h | 1;
	index = bpf_get_smp_processor_id() * flow_buckets + ((__u32)(h >> 32) & (flow_buckets - 1));
	return bpf_map_lookup_elem(&flows, &index);
}

static __always_inline struct ringlb_flow_bucket *flow_bucket(const struct ringlb_flow_key *k,
							      __u32 *tag)
{
	return flow_bucket_as(k, tag, 0);
}

static __always_inline int flow_key_equal_as(const struct ringlb_flow_key *a,
					     const struct ringlb_flow_key *b, int v4)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 upper = v4 ? 0 : (x[1] ^ y[1]) | (x[3] ^ y[3]);

	return ((x[0] ^ y[0]) | (x[2] ^ y[2]) | (x[4] ^ y[4]) | upper) == 0;
}

static __always_inline int flow_key_equal(const struct ringlb_flow_key *a,
					  const struct ringlb_flow_key *b)
{
	return flow_key_equal_as(a, b, 0);
}

/* The slot index of flow `k` in its bucket, or -1. */
static __always_inline int flow_find_as(const struct ringlb_flow_bucket *b,
					const struct ringlb_flow_key *k, __u32 tag, int v4)
{
	int i;

#pragma unroll
	for (i = 0; i < RINGLB_FLOW_WAYS; i++)
		if (b->tags[i] == tag && flow_key_equal_as(&b->slots[i].key, k, v4))
			return i;
	return -1;
}

static __always_inline int flow_find(const struct ringlb_flow_bucket *b,
				     const struct ringlb_flow_key *k, __u32 tag)
{
	return flow_find_as(b, k, tag, 0);
}

/*
 * used[i]: the jiffy of slot i's last packet, shifted left one bit, with bit 0 set once
 * the flow is established. A TCP SYN or a first UDP datagram makes an embryonic entry;
 * the flow's next packet promotes it (the established path writes a stamp with bit 0
 * set). The shift halves the wrap of the low 32 bits of jiffies: 2^31 jiffies, 24 days
 * at HZ 1000.
 */
#define FLOW_ESTABLISHED 1u

static __always_inline __u32 flow_stamp(__u64 now, __u32 established)
{
	return ((__u32)now << 1) | established;
}

/*
 * An established entry idle this long may give its slot to a new flow when its bucket
 * holds no embryonic entry (the loader sets it from xdp.flow_idle_timeout_ms and the
 * kernel's tick; this default is 60 s at HZ 1000).
 */
const volatile __u32 flow_idle_jiffies = 60000;

static __always_inline void flow_event(__u32 event)
{
	__u64 *count = bpf_map_lookup_elem(&flow_stats, &event);

	if (count)
		NO_TEAR_ADD(*count, 1);
}

/*
 * Binds flow `k` to `flow`: its own slot, else an empty one, else the oldest embryonic
 * one, else the least recently used established one if it has been idle for
 * flow_idle_jiffies. Otherwise the flow gets no entry (Maglev alone balances it): a
 * flood of SYNs from new sources only ever pushes out its own kind, never a live
 * established flow.
 */
static __always_inline void flow_insert(struct ringlb_flow_bucket *b,
					const struct ringlb_flow_key *k, __u32 tag,
					const struct ringlb_flow *flow, __u64 now,
					__u32 established)
{
	__u32 stamp = flow_stamp(now, established);
	int i, victim = -1, embryonic = -1, idle = -1;

#pragma unroll
	for (i = 0; i < RINGLB_FLOW_WAYS; i++) {
		__u32 used = b->used[i];

		if (b->tags[i] == 0 || (b->tags[i] == tag && flow_key_equal(&b->slots[i].key, k))) {
			victim = i;
			break;
		}
		if (!(used & FLOW_ESTABLISHED)) {
			if (embryonic < 0 ||
			    (__s32)(used - b->used[embryonic & (RINGLB_FLOW_WAYS - 1)]) < 0)
				embryonic = i;
		} else if (idle < 0 || (__s32)(used - b->used[idle & (RINGLB_FLOW_WAYS - 1)]) < 0) {
			idle = i;
		}
	}
	if (victim < 0) {
		if (embryonic >= 0) {
			victim = embryonic;
			flow_event(RINGLB_FE_EVICT_EMBRYONIC);
		} else if (idle >= 0 && (__s32)(stamp - b->used[idle & (RINGLB_FLOW_WAYS - 1)]) >=
					    (__s32)(flow_idle_jiffies << 1)) {
			victim = idle;
			flow_event(RINGLB_FE_EVICT_IDLE);
		} else {
			flow_event(RINGLB_FE_NOT_INSERTED);
			return;
		}
	}
	flow_event(established ? RINGLB_FE_INSERT_ESTABLISHED : RINGLB_FE_INSERT_EMBRYONIC);
	victim &= RINGLB_FLOW_WAYS - 1;
	b->slots[victim].key = *k;
	b->slots[victim].flow = *flow;
	b->used[victim] = stamp;
	b->tags[victim] = tag;
}

#endif /* RINGLB_BPF_FLOW_H */
