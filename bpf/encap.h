/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * IPIP / IP6IP6 encapsulation: the outer IPv4 or IPv6 header of a packet forwarded to a
 * backend. The outer family is the backend's; the inner packet is the client's, whole.
 */
#ifndef RINGLB_BPF_ENCAP_H
#define RINGLB_BPF_ENCAP_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "helpers.h"
#include "parsing.h"
#include "ringlb/abi/xdp_abi.h"

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

#endif /* RINGLB_BPF_ENCAP_H */
