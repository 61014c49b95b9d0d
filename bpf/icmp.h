/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * ICMP "fragmentation needed" and ICMPv6 "packet too big" replies, built in place of a
 * packet too big for the path to its backend and sent back out the ingress device.
 */
#ifndef RINGLB_BPF_ICMP_H
#define RINGLB_BPF_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "helpers.h"
#include "parsing.h"
#include "ringlb/abi/xdp_abi.h"

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

#endif /* RINGLB_BPF_ICMP_H */
