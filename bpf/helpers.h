/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Helpers of the ringlb XDP program: counters, checksums, L2 rewriting, IPIP/IP6IP6
 * encapsulation and ICMP "too big" replies. Every helper is __always_inline: the
 * program is one function for the verifier.
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

/* Fills in the checksum of a 20-byte IPv4 header (no options). */
static __always_inline void ipv4_set_csum(struct iphdr *iph)
{
	__u16 *word = (__u16 *)iph;
	__u64 sum = 0;
	int i;

	iph->check = 0;
#pragma unroll
	for (i = 0; i < IPV4_HDR_LEN / 2; i++)
		sum += word[i];
	iph->check = csum_fold(sum);
}

/*
 * ICMP and ICMPv6 headers as the "too big" replies use them (linux/icmp.h drags in
 * libc's socket headers, which do not build for the BPF target).
 */
struct icmp4_too_big {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu;
};

struct icmp6_too_big {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 mtu;
};

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

/*
 * Writes the outer IPv4 header. The header is built in registers as five 32-bit words
 * (network order) and its checksum summed from them: reading back the fields just
 * stored would stall on store-to-load forwarding.
 */
static __always_inline void write_outer_v4(struct iphdr *outer, const struct packet *p,
					   const struct ringlb_backend *be, __u32 saddr)
{
	__u32 proto = p->flow.family == RINGLB_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u32 *w = (__u32 *)outer;
	__u32 w0, w1, w2, w3 = saddr, w4 = be->addr[0];
	__u64 sum;

	/* version/ihl, tos, total length | id 0, DF | ttl, protocol, checksum 0 */
	w0 = bpf_htonl(0x45000000 | (__u32)p->tos << 16 | (__u32)(p->l3_len + IPV4_HDR_LEN));
	w1 = bpf_htonl(IP_DF);
	w2 = bpf_htonl((__u32)RINGLB_OUTER_TTL << 24 | proto << 16);
	sum = (__u64)w0 + w1 + w2 + w3 + w4;
	w2 |= (__u32)csum_fold((sum & 0xffffffff) + (sum >> 32)) << 16;
	w[0] = w0;
	w[1] = w1;
	w[2] = w2;
	w[3] = w3;
	w[4] = w4;
}

static __always_inline void write_outer_v6(struct ipv6hdr *outer, const struct packet *p,
					   const struct ringlb_backend *be, const __u32 *saddr,
					   __u32 flow_label)
{
	outer->version = 6;
	outer->priority = p->tos >> 4;
	outer->flow_lbl[0] = ((p->tos & 0xf) << 4) | ((flow_label >> 16) & 0xf);
	outer->flow_lbl[1] = flow_label >> 8;
	outer->flow_lbl[2] = flow_label;
	outer->payload_len = bpf_htons(p->l3_len);
	outer->nexthdr = p->flow.family == RINGLB_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	outer->hop_limit = RINGLB_OUTER_TTL;
	__builtin_memcpy(&outer->saddr, saddr, 16);
	__builtin_memcpy(&outer->daddr, be->addr, 16);
}

/*
 * Replies to the client with ICMP "fragmentation needed" carrying `mtu`, from the VIP,
 * out the ingress device with the L2 header mirrored. The reply quotes the first
 * ICMP4_QUOTE_LEN bytes of the packet. Returns RINGLB_V_TX_TOO_BIG (send with XDP_TX)
 * or RINGLB_V_DROP_ERROR.
 */
static __always_inline enum ringlb_verdict send_too_big_v4(struct xdp_md *ctx,
							   const struct packet *p, __u32 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3_off = p->l3_off, keep, client = p->flow.src[0], vip = p->flow.dst[0];
	struct l2_saved l2;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct icmp4_too_big *icmp;
	union {
		__u8 b[2 * ETH_ALEN];
		__u32 w[3];
	} macs; /* the reply's: the request's swapped */
	int len = data_end - data;

	if (l2_save(data, data_end, &l2) < 0 || l3_off > L2_MAX_LEN)
		return RINGLB_V_DROP_ERROR;
	eth = data;
	__builtin_memcpy(macs.b, eth->h_source, ETH_ALEN);
	__builtin_memcpy(macs.b + ETH_ALEN, eth->h_dest, ETH_ALEN);
	keep = l3_off + ICMP4_QUOTE_LEN;
	if (len <= (int)keep || bpf_xdp_adjust_tail(ctx, (int)keep - len))
		return RINGLB_V_DROP_ERROR;
	if (bpf_xdp_adjust_head(ctx, -(int)(IPV4_HDR_LEN + ICMP_HDR_LEN)))
		return RINGLB_V_DROP_ERROR;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l2_write(data, data_end, &l2, p->vlan_depth, macs.w, bpf_htons(ETH_P_IP)) < 0)
		return RINGLB_V_DROP_ERROR;
	iph = l3_ptr(data, l3_off);
	icmp = (void *)(iph + 1);
	if ((void *)icmp + ICMP_HDR_LEN + ICMP4_QUOTE_LEN > data_end)
		return RINGLB_V_DROP_ERROR;

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons(IPV4_HDR_LEN + ICMP_HDR_LEN + ICMP4_QUOTE_LEN);
	iph->id = 0;
	iph->frag_off = bpf_htons(IP_DF);
	iph->ttl = RINGLB_OUTER_TTL;
	iph->protocol = IPPROTO_ICMP;
	iph->saddr = vip;
	iph->daddr = client;
	ipv4_set_csum(iph);

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->unused = 0;
	icmp->mtu = bpf_htons(mtu);
	icmp->checksum =
	    csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)icmp, ICMP_HDR_LEN + ICMP4_QUOTE_LEN, 0));
	return RINGLB_V_TX_TOO_BIG;
}

/* The IPv6 pseudo-header of an ICMPv6 checksum. */
struct ipv6_pseudo_hdr {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be32 len;
	__u8 zero[3];
	__u8 nexthdr;
};

/* The ICMPv6 "packet too big" counterpart of send_too_big_v4. */
static __always_inline enum ringlb_verdict send_too_big_v6(struct xdp_md *ctx,
							   const struct packet *p, __u32 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3_off = p->l3_off, keep;
	struct ipv6_pseudo_hdr ph = {};
	struct l2_saved l2;
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	struct icmp6_too_big *icmp6;
	union {
		__u8 b[2 * ETH_ALEN];
		__u32 w[3];
	} macs; /* the reply's: the request's swapped */
	int len = data_end - data;
	__s64 sum;

	if (l2_save(data, data_end, &l2) < 0 || l3_off > L2_MAX_LEN)
		return RINGLB_V_DROP_ERROR;
	eth = data;
	__builtin_memcpy(macs.b, eth->h_source, ETH_ALEN);
	__builtin_memcpy(macs.b + ETH_ALEN, eth->h_dest, ETH_ALEN);
	keep = l3_off + ICMP6_QUOTE_LEN;
	if (len <= (int)keep || bpf_xdp_adjust_tail(ctx, (int)keep - len))
		return RINGLB_V_DROP_ERROR;
	if (bpf_xdp_adjust_head(ctx, -(int)(IPV6_HDR_LEN + ICMP_HDR_LEN)))
		return RINGLB_V_DROP_ERROR;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l2_write(data, data_end, &l2, p->vlan_depth, macs.w, bpf_htons(ETH_P_IPV6)) < 0)
		return RINGLB_V_DROP_ERROR;
	ip6h = l3_ptr(data, l3_off);
	icmp6 = (void *)(ip6h + 1);
	if ((void *)icmp6 + ICMP_HDR_LEN + ICMP6_QUOTE_LEN > data_end)
		return RINGLB_V_DROP_ERROR;

	if (mtu < IPV6_MIN_MTU)
		mtu = IPV6_MIN_MTU;
	__builtin_memcpy(&ph.saddr, p->flow.dst, 16);
	__builtin_memcpy(&ph.daddr, p->flow.src, 16);
	ph.len = bpf_htonl(ICMP_HDR_LEN + ICMP6_QUOTE_LEN);
	ph.nexthdr = IPPROTO_ICMPV6;

	ip6h->version = 6;
	ip6h->priority = 0;
	ip6h->flow_lbl[0] = 0;
	ip6h->flow_lbl[1] = 0;
	ip6h->flow_lbl[2] = 0;
	ip6h->payload_len = bpf_htons(ICMP_HDR_LEN + ICMP6_QUOTE_LEN);
	ip6h->nexthdr = IPPROTO_ICMPV6;
	ip6h->hop_limit = RINGLB_OUTER_TTL;
	ip6h->saddr = ph.saddr;
	ip6h->daddr = ph.daddr;

	icmp6->type = ICMPV6_PKT_TOOBIG;
	icmp6->code = 0;
	icmp6->checksum = 0;
	icmp6->mtu = bpf_htonl(mtu);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)icmp6, ICMP_HDR_LEN + ICMP6_QUOTE_LEN, sum);
	icmp6->checksum = csum_fold(sum);
	return RINGLB_V_TX_TOO_BIG;
}

#endif /* RINGLB_BPF_HELPERS_H */
