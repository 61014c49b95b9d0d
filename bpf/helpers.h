/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Helpers shared by the ringlb BPF programs: per-CPU counters, the checksum fold and
 * L2 header rewriting. Encapsulation is in encap.h, ICMP replies in icmp.h, the flow
 * table in flow.h. Every helper is __always_inline: each program is one function for
 * the verifier.
 */
#ifndef RINGLB_BPF_HELPERS_H
#define RINGLB_BPF_HELPERS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "parsing.h"
#include "ringlb/abi/xdp_abi.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x)) = (v)
/* Per-CPU counters: a plain, untorn add is enough (Katran's NO_TEAR_ADD). */
#define NO_TEAR_ADD(x, v) WRITE_ONCE((x), READ_ONCE(x) + (v))

/*
 * data + l3_off, for an l3_off already checked against L2_MAX_LEN. clang may form the
 * pointer from a copy of l3_off that the check did not bound, and the verifier then
 * rejects the access: mask the register that forms it (barrier_var keeps clang from
 * dropping the mask as redundant).
 */
static __always_inline void *l3_ptr(void *data, __u32 l3_off)
{
	barrier_var(l3_off);
	return data + (l3_off & 0x3f);
}

static __always_inline void counter_add(void *map, __u32 index, __u64 bytes)
{
	struct ringlb_counter *c = bpf_map_lookup_elem(map, &index);

	if (!c)
		return;
	NO_TEAR_ADD(c->packets, 1);
	NO_TEAR_ADD(c->bytes, bytes);
}

static __always_inline __u16 csum_fold(__u64 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return ~csum;
}

/*
 * The L2 header of a frame as words, kept across adjust_head: the two MACs and the VLAN
 * tags (tag i is the word at offset 12 + 4 * i). Where the MACs are rewritten anyway,
 * clang drops their copy.
 */
struct l2_saved {
	__u32 macs[3];
	__u32 tag[VLAN_MAX_DEPTH];
};

/* Saves the words. Precondition: the frame holds L2_MAX_LEN bytes. */
static __always_inline int l2_save(void *data, void *data_end, struct l2_saved *t)
{
	__u32 *w = data;
	int i;

	if (data + L2_MAX_LEN > data_end)
		return -1;
#pragma unroll
	for (i = 0; i < 3; i++)
		t->macs[i] = w[i];
#pragma unroll
	for (i = 0; i < VLAN_MAX_DEPTH; i++)
		t->tag[i] = w[3 + i];
	return 0;
}

/*
 * Writes an L2 header at the start of the frame: `macs` (destination and source MAC as
 * three words), the tags `tags` (tag i is tags[i]) and the EtherType `h_proto` after them.
 * Precondition: the frame holds L2_MAX_LEN bytes. Returns the new L3 offset or -1.
 */
static __always_inline int l2_write_tags(void *data, void *data_end, const __u32 *tags,
					 __u8 vlan_depth, const __u32 *macs, __u16 h_proto)
{
	__u32 *w = data;
	__u16 *type;
	int i;

	w[0] = macs[0];
	w[1] = macs[1];
	w[2] = macs[2];
#pragma unroll
	for (i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (i >= vlan_depth)
			break;
		w[3 + i] = tags[i];
	}
	if (vlan_depth > VLAN_MAX_DEPTH)
		return -1;
	type = data + 12 + vlan_depth * VLAN_HDR_LEN;
	if ((void *)(type + 1) > data_end)
		return -1;
	*type = h_proto;
	return ETH_HLEN + vlan_depth * VLAN_HDR_LEN;
}

/* l2_write_tags with the tags of `t` (saved by l2_save). */
static __always_inline int l2_write(void *data, void *data_end, const struct l2_saved *t,
				    __u8 vlan_depth, const __u32 *macs, __u16 h_proto)
{
	if (data + L2_MAX_LEN > data_end)
		return -1;
	return l2_write_tags(data, data_end, t->tag, vlan_depth, macs, h_proto);
}

/*
 * l2_write_tags for a frame whose start just moved `moved` bytes to the front
 * (bpf_xdp_adjust_head): the old header's tags are copied from where they are now.
 * `moved` is larger than the tags, so the copy never reads what it wrote.
 */
static __always_inline int l2_rewrite_moved(void *data, void *data_end, __u32 moved,
					    __u8 vlan_depth, const __u32 *macs, __u16 h_proto)
{
	__u32 *old = data + moved;

	if ((void *)old + L2_MAX_LEN > data_end)
		return -1;
	return l2_write_tags(data, data_end, old + 3, vlan_depth, macs, h_proto);
}

#endif /* RINGLB_BPF_HELPERS_H */
