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
 * The flow table (struct ringlb_flow_bucket): a bucket is one cache line of four entries,
 * each known by its flow's fingerprint, ringlb_flow_hash() of the 5-tuple under the
 * client hash key. Without the key a client cannot aim its flows at one bucket to push
 * other flows out.
 *
 * An IPv4 key's address words past the first are 0 (every key is built in a zeroed struct
 * and only src[0] and dst[0] set), so with `v4` set the hash leaves key words 1 and 3 out
 * of the loads (the same hash). The family is in word 4, so an IPv4 key never hashes as
 * an IPv6 one would by construction.
 */
static __always_inline struct ringlb_flow_bucket *flow_bucket_as(const struct ringlb_flow_key *k,
								 __u64 *fp, int v4)
{
	const __u64 *w = (const __u64 *)k;
	__u64 words[5] = {w[0], v4 ? 0 : w[1], w[2], v4 ? 0 : w[3], w[4]};
	__u32 index;

	*fp = ringlb_flow_hash(words, hash_key_k0, hash_key_k1);
	index =
	    bpf_get_smp_processor_id() * flow_buckets + ((__u32)(*fp >> 32) & (flow_buckets - 1));
	return bpf_map_lookup_elem(&flows, &index);
}

static __always_inline struct ringlb_flow_bucket *flow_bucket(const struct ringlb_flow_key *k,
							      __u64 *fp)
{
	return flow_bucket_as(k, fp, 0);
}

/* The way of the flow with fingerprint `fp` in its bucket, or -1. */
static __always_inline int flow_find(const struct ringlb_flow_bucket *b, __u64 fp)
{
	int i;

#pragma unroll
	for (i = 0; i < RINGLB_FLOW_WAYS; i++)
		if (b->ways[i].fp == fp)
			return i;
	return -1;
}

/*
 * used: the jiffy of the entry's last packet, shifted left one bit, with bit 0 set once
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
 * Binds the flow with fingerprint `fp` to `bind` (ringlb_flow_bind): its own entry (even
 * behind an empty one), else an empty one, else the oldest embryonic one, else the least
 * recently used established one if it has been idle for flow_idle_jiffies. Otherwise the
 * flow gets no entry (Maglev alone balances it): a flood of SYNs from new sources only
 * ever pushes out its own kind, never a live established flow.
 */
static __always_inline void flow_insert(struct ringlb_flow_bucket *b, __u64 fp, __u32 bind,
					__u64 now, __u32 established)
{
	__u32 stamp = flow_stamp(now, established);
	/* The oldest stamps so far, kept in registers: no reload through a found index. */
	__u32 embryonic_used = 0, idle_used = 0;
	int i, victim = -1, empty = -1, embryonic = -1, idle = -1;

#pragma unroll
	for (i = 0; i < RINGLB_FLOW_WAYS; i++) {
		__u64 held = b->ways[i].fp;
		__u32 used = b->ways[i].used;

		if (held == fp) {
			victim = i;
			break;
		}
		if (held == 0) {
			if (empty < 0)
				empty = i;
		} else if (!(used & FLOW_ESTABLISHED)) {
			if (embryonic < 0 || (__s32)(used - embryonic_used) < 0) {
				embryonic = i;
				embryonic_used = used;
			}
		} else if (idle < 0 || (__s32)(used - idle_used) < 0) {
			idle = i;
			idle_used = used;
		}
	}
	if (victim < 0) {
		if (empty >= 0) {
			victim = empty;
		} else if (embryonic >= 0) {
			victim = embryonic;
			flow_event(RINGLB_FE_EVICT_EMBRYONIC);
		} else if (idle >= 0 &&
			   (__s32)(stamp - idle_used) >= (__s32)(flow_idle_jiffies << 1)) {
			victim = idle;
			flow_event(RINGLB_FE_EVICT_IDLE);
		} else {
			flow_event(RINGLB_FE_NOT_INSERTED);
			return;
		}
	}
	flow_event(established ? RINGLB_FE_INSERT_ESTABLISHED : RINGLB_FE_INSERT_EMBRYONIC);
	victim &= RINGLB_FLOW_WAYS - 1;
	b->ways[victim].fp = fp;
	b->ways[victim].used = stamp;
	b->ways[victim].bind = bind;
}

#endif /* RINGLB_BPF_FLOW_H */
