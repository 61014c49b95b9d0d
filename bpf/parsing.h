/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Header parsing with a cursor and data_end, in the form of xdp-tools'
 * parsing_helpers.h: each parser checks bounds before it reads, advances the cursor
 * and returns the next protocol, or -1 when the header is truncated or malformed.
 */
#ifndef RINGLB_BPF_PARSING_H
#define RINGLB_BPF_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "ringlb/abi/xdp_abi.h"

struct hdr_cursor {
	void *pos;
};

/* The UAPI has no struct for a VLAN tag. */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

/* The start of a TCP header (linux/tcp.h needs bit-field endianness macros). */
struct tcp_ports_hdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res; /* data offset in the top 4 bits */
	__u8 flags;
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

/* What the parsers found out about a packet. */
struct packet {
	__u32 l3_off; /* offset of the IP header from data */
	__u32 l4_off; /* offset of the transport header from data */
	__u16 l3_len; /* the IP packet's length: header(s) and payload */
	__u8 vlan_depth;
	__u8 tos;      /* IPv4 TOS / IPv6 traffic class */
	__u8 fragment; /* an IPv4 fragment or an IPv6 packet with a fragment header */
	__u8 tcp_flags;
	__u8 df;		     /* IPv4: the sender forbids fragmentation */
	struct ringlb_flow_key flow; /* addresses, ports, protocol, family */
};

static __always_inline int proto_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

/*
 * Parses Ethernet and up to VLAN_MAX_DEPTH VLAN tags. Returns the EtherType of the
 * payload (network order) or -1.
 */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end, __u8 *vlan_depth)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__u16 h_proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -1;
	nh->pos = eth + 1;
	/* struct ethhdr is packed: through it, clang would load the EtherType bytewise. */
	h_proto = ((__u16 *)eth)[6];
	*vlan_depth = 0;

#pragma unroll
	for (i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return -1;
		h_proto = vlh->h_vlan_encapsulated_proto;
		nh->pos = vlh + 1;
		*vlan_depth = i + 1;
	}
	/* More tags than VLAN_MAX_DEPTH: not ours to parse. */
	if (proto_is_vlan(h_proto))
		return -1;
	return h_proto;
}

/*
 * Parses an IPv4 header with options. Checks version, IHL and total length against the
 * frame. Returns the protocol or -1.
 */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data, void *data_end,
				       struct packet *p)
{
	struct iphdr *iph = nh->pos;
	__u32 hdrsize, tot_len;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4 || iph->ihl < 5)
		return -1;
	hdrsize = iph->ihl * 4;
	if (nh->pos + hdrsize > data_end)
		return -1;
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < hdrsize || (void *)iph + tot_len > data_end)
		return -1;

	p->l3_len = tot_len;
	p->tos = iph->tos;
	p->fragment = (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
	p->df = (iph->frag_off & bpf_htons(IP_DF)) != 0;
	p->flow.family = RINGLB_FAMILY_V4;
	/* As whole key words (see copy_addr_words): the upper address word is 0. */
	((__u64 *)p->flow.src)[0] = iph->saddr;
	((__u64 *)p->flow.dst)[0] = iph->daddr;
	nh->pos += hdrsize;
	p->l4_off = nh->pos - data;
	return iph->protocol;
}

/*
 * Copies an IPv6 address into a flow key's address as two 64-bit stores. The flow table
 * reads a key as 64-bit words; a word written by several narrower stores just before
 * cannot be forwarded from them, and the load waits until they reach the cache.
 */
static __always_inline void copy_addr_words(__u32 *to, const void *from)
{
	__u64 w[2];

	__builtin_memcpy(w, from, 16);
	((__u64 *)to)[0] = w[0];
	((__u64 *)to)[1] = w[1];
}

/*
 * Parses an IPv6 header and skips up to IPV6_EXT_MAX_CHAIN extension headers. A
 * fragment header marks the packet as a fragment. Returns the upper-layer protocol or -1.
 */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data, void *data_end,
					struct packet *p)
{
	struct ipv6hdr *ip6h = nh->pos;
	struct ipv6_opt_hdr *opt;
	__u32 payload_len;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	payload_len = bpf_ntohs(ip6h->payload_len);
	if ((void *)(ip6h + 1) + payload_len > data_end)
		return -1;

	p->l3_len = IPV6_HDR_LEN + payload_len;
	p->tos = (ip6h->priority << 4) | (ip6h->flow_lbl[0] >> 4);
	p->flow.family = RINGLB_FAMILY_V6;
	copy_addr_words(p->flow.src, &ip6h->saddr);
	copy_addr_words(p->flow.dst, &ip6h->daddr);
	nh->pos = ip6h + 1;
	nexthdr = ip6h->nexthdr;

#pragma unroll
	for (i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {
		opt = nh->pos;
		switch (nexthdr) {
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
			if ((void *)(opt + 1) > data_end)
				return -1;
			nexthdr = opt->nexthdr;
			nh->pos += (opt->hdrlen + 1) * 8;
			break;
		case NEXTHDR_AUTH:
			if ((void *)(opt + 1) > data_end)
				return -1;
			nexthdr = opt->nexthdr;
			nh->pos += (opt->hdrlen + 2) * 4;
			break;
		case NEXTHDR_FRAGMENT:
			if ((void *)(opt + 1) > data_end)
				return -1;
			p->fragment = 1;
			nexthdr = opt->nexthdr;
			nh->pos += 8;
			break;
		default:
			goto done;
		}
	}
	/* Still an extension header after IPV6_EXT_MAX_CHAIN of them: give up. */
	switch (nexthdr) {
	case NEXTHDR_HOP:
	case NEXTHDR_ROUTING:
	case NEXTHDR_DEST:
	case NEXTHDR_AUTH:
	case NEXTHDR_FRAGMENT:
		return -1;
	}
done:
	if (nh->pos > data_end)
		return -1;
	p->l4_off = nh->pos - data;
	return nexthdr;
}

/* Reads the ports of a TCP header. Returns 0 or -1. */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end, struct packet *p)
{
	struct tcp_ports_hdr *tcph = nh->pos;
	__u32 len;

	if ((void *)(tcph + 1) > data_end)
		return -1;
	len = (tcph->doff_res >> 4) * 4;
	if (len < sizeof(*tcph) || nh->pos + len > data_end)
		return -1;
	p->flow.sport = tcph->source;
	p->flow.dport = tcph->dest;
	p->tcp_flags = tcph->flags;
	nh->pos += len;
	return 0;
}

/* Reads the ports of a UDP header. Returns 0 or -1. */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end, struct packet *p)
{
	struct udphdr *udph = nh->pos;

	if ((void *)(udph + 1) > data_end)
		return -1;
	p->flow.sport = udph->source;
	p->flow.dport = udph->dest;
	nh->pos = udph + 1;
	return 0;
}

#endif /* RINGLB_BPF_PARSING_H */
