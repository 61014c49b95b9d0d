// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * ringlb decapsulation for backends. Strips the outer IPv4 or IPv6 header of IPIP,
 * IPv6-in-IPv4, IPv4-in-IPv6 and IP6IP6 packets (what ringlb's forward mode sends), so
 * the inner packet, addressed to a VIP the backend holds on lo, enters the stack as if it
 * had arrived directly. Everything else passes untouched. Production backends may use
 * the kernel's ipip / ip6tnl devices instead.
 *
 * Two entry points share the parsing (decap_parse()) and the counters:
 *   ringlb_decap     SEC("xdp"): native or generic XDP;
 *   ringlb_decap_tc  SEC("tc"):  a direct-action cls_bpf filter on clsact ingress, for
 *                    devices without native XDP or whose XDP hook another program owns.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "helpers.h"
#include "parsing.h"
#include "ringlb/abi/xdp_abi.h"

/*
 * bpf_skb_adjust_room() flags of Linux 6.3 (Debian 12's UAPI headers predate them): the
 * family of the header that is outermost after the shrink. The kernel then sets
 * skb->protocol to it.
 */
#define RINGLB_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define RINGLB_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)

/* Longest outer IP header: IPv4 with 40 bytes of options. */
#define DECAP_OUTER_MAX_LEN 60
/* The bytes decap_parse() reads: the L2 header and the longest outer IP header. */
#define DECAP_HDR_MAX_LEN (L2_MAX_LEN + DECAP_OUTER_MAX_LEN)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RINGLB_DV_MAX);
	__type(key, __u32);
	__type(value, struct ringlb_counter);
} decap_stats SEC(".maps");

/*
 * The outer sources the program decapsulates from (ringlb decap attach --allow CIDR):
 * anything else that is a tunnel packet is dropped and counted (RINGLB_DV_DROP_SOURCE),
 * so a host that can reach a backend cannot inject packets with spoofed inner sources.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, RINGLB_DECAP_ALLOW_MAX);
	__type(key, struct ringlb_decap_v4_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} decap_allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, RINGLB_DECAP_ALLOW_MAX);
	__type(key, struct ringlb_decap_v6_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} decap_allow_v6 SEC(".maps");

/* 1: decapsulate from any source (ringlb decap attach --allow-any). Set by the loader. */
const volatile __u32 decap_allow_any = 0;

/* The outer header of a tunnel packet, as decap_parse() found it. */
struct decap_hdr {
	__u32 l3_off;	    /* offset of the outer IP header from the frame's start */
	__u32 outer_len;    /* length of the outer IP header: 20..60 (IPv4) or 40 */
	__be16 outer_proto; /* EtherType of the outer header */
	__be16 inner_proto; /* EtherType of the inner packet */
	__u8 vlan_depth;    /* VLAN tags in the frame, in front of the outer header */
};

static __always_inline int decap_verdict(enum ringlb_decap_verdict v, int action, __u64 bytes)
{
	counter_add(&decap_stats, v, bytes);
	return action;
}

/*
 * Parses the frame whose first bytes are [data, data_end) and whose length is pkt_len
 * (XDP: data_end - data; tc: skb->len, of which only the linear part is in
 * [data, data_end)). Returns RINGLB_DV_DECAP, with *h filled in, when the frame is an IP
 * packet carrying IPv4 or IPv6 (protocol 4 or 41) whose outer header is whole and valid:
 * IPv4 of version 4, IHL of at least 5, a total length within the frame, not a fragment;
 * IPv6 of version 6 with a payload length within the frame and no extension header
 * (ringlb sends none). Returns RINGLB_DV_DROP_SOURCE for a tunnel packet whose outer
 * source is not in the allowlist (unless decap_allow_any), RINGLB_DV_PASS_MALFORMED for
 * a tunnel packet that fails those checks and RINGLB_DV_PASS for anything else.
 */
static __always_inline enum ringlb_decap_verdict decap_parse(void *data, void *data_end,
							     __u32 pkt_len, struct decap_hdr *h)
{
	struct hdr_cursor nh = {.pos = data};
	__u8 vlan_depth;
	__u32 l3_len;
	int h_proto;
	__u8 proto;

	h_proto = parse_ethhdr(&nh, data_end, &vlan_depth);
	if (h_proto < 0)
		return RINGLB_DV_PASS;
	h->l3_off = nh.pos - data;
	h->vlan_depth = vlan_depth;
	h->outer_proto = h_proto;
	if (h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = nh.pos;

		if ((void *)(iph + 1) > data_end)
			return RINGLB_DV_PASS;
		proto = iph->protocol;
		if (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6)
			return RINGLB_DV_PASS;
		if (iph->version != 4 || iph->ihl < 5)
			return RINGLB_DV_PASS_MALFORMED;
		if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return RINGLB_DV_PASS_MALFORMED;
		h->outer_len = iph->ihl * 4;
		l3_len = bpf_ntohs(iph->tot_len);
		if (l3_len < h->outer_len)
			return RINGLB_DV_PASS_MALFORMED;
		if (!decap_allow_any) {
			struct ringlb_decap_v4_key key = {.prefixlen = 32, .addr = iph->saddr};

			if (!bpf_map_lookup_elem(&decap_allow_v4, &key))
				return RINGLB_DV_DROP_SOURCE;
		}
	} else if (h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = nh.pos;

		if ((void *)(ip6h + 1) > data_end)
			return RINGLB_DV_PASS;
		proto = ip6h->nexthdr;
		if (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6)
			return RINGLB_DV_PASS;
		if (ip6h->version != 6)
			return RINGLB_DV_PASS_MALFORMED;
		h->outer_len = IPV6_HDR_LEN;
		l3_len = IPV6_HDR_LEN + bpf_ntohs(ip6h->payload_len);
		if (!decap_allow_any) {
			struct ringlb_decap_v6_key key = {.prefixlen = 128};

			__builtin_memcpy(key.addr, &ip6h->saddr, sizeof(key.addr));
			if (!bpf_map_lookup_elem(&decap_allow_v6, &key))
				return RINGLB_DV_DROP_SOURCE;
		}
	} else {
		return RINGLB_DV_PASS;
	}
	/* The whole outer header in [data, data_end), the whole IP packet in the frame. */
	if (nh.pos + h->outer_len > data_end || h->l3_off + l3_len > pkt_len)
		return RINGLB_DV_PASS_MALFORMED;
	h->inner_proto = proto == IPPROTO_IPIP ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	return RINGLB_DV_DECAP;
}

SEC("xdp")
int ringlb_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	enum ringlb_decap_verdict verdict;
	struct decap_hdr h = {};
	struct l2_saved l2;

	verdict = decap_parse(data, data_end, bytes, &h);
	if (verdict == RINGLB_DV_DROP_SOURCE)
		return decap_verdict(verdict, XDP_DROP, bytes);
	if (verdict != RINGLB_DV_DECAP)
		return decap_verdict(verdict, XDP_PASS, bytes);
	/* adjust_head drops the front of the frame: keep the L2 header to write it back. */
	if (l2_save(data, data_end, &l2) < 0)
		return decap_verdict(RINGLB_DV_PASS_MALFORMED, XDP_PASS, bytes);
	if (bpf_xdp_adjust_head(ctx, (int)h.outer_len))
		return decap_verdict(RINGLB_DV_DROP_ERROR, XDP_DROP, bytes);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l2_write(data, data_end, &l2, h.vlan_depth, l2.macs, h.inner_proto) < 0)
		return decap_verdict(RINGLB_DV_DROP_ERROR, XDP_DROP, bytes);
	return decap_verdict(RINGLB_DV_DECAP, XDP_PASS, bytes);
}

SEC("tc")
int ringlb_decap_tc(struct __sk_buff *skb)
{
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	__u64 bytes = skb->len;
	enum ringlb_decap_verdict verdict;
	void *data, *data_end;
	struct decap_hdr h = {};

	/*
	 * Direct packet access sees the linear part only. Drivers put the headers there; pull
	 * them when one has not (a short frame that is not linear is left as it is).
	 */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + DECAP_HDR_MAX_LEN > data_end && skb->len >= DECAP_HDR_MAX_LEN)
		bpf_skb_pull_data(skb, DECAP_HDR_MAX_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	verdict = decap_parse(data, data_end, skb->len, &h);
	if (verdict == RINGLB_DV_DROP_SOURCE)
		return decap_verdict(verdict, TC_ACT_SHOT, bytes);
	if (verdict != RINGLB_DV_DECAP)
		return decap_verdict(verdict, TC_ACT_OK, bytes);
	/*
	 * bpf_skb_adjust_room() shrinks only a packet whose skb->protocol is IPv4 or IPv6, at
	 * the kernel's MAC header length. At tc ingress the kernel has taken the VLAN tag out
	 * of the frame already (skb_vlan_untag()), so a tag still in it (the inner tag of
	 * QinQ, or a BPF_PROG_TEST_RUN frame) leaves skb->protocol a VLAN type: such a packet
	 * cannot be decapsulated here.
	 */
	if (h.vlan_depth || skb->protocol != h.outer_proto)
		return decap_verdict(RINGLB_DV_PASS_UNSUPPORTED, TC_ACT_OK, bytes);
	/*
	 * The size of the segments of a GRO packet is the inner packet's: keep it. When the
	 * families differ, the flag makes the kernel set skb->protocol to the inner one.
	 */
	if (h.inner_proto != h.outer_proto)
		flags |= h.inner_proto == bpf_htons(ETH_P_IP) ? RINGLB_ADJ_ROOM_DECAP_L3_IPV4
							      : RINGLB_ADJ_ROOM_DECAP_L3_IPV6;
	if (bpf_skb_adjust_room(skb, -(__s32)h.outer_len, BPF_ADJ_ROOM_MAC, flags))
		return decap_verdict(RINGLB_DV_DROP_ERROR, TC_ACT_SHOT, bytes);
	/*
	 * The MAC header stayed in front; its EtherType still names the outer family. The
	 * checksum of an ingress packet does not cover the MAC header: no csum flag.
	 */
	if (h.inner_proto != h.outer_proto &&
	    bpf_skb_store_bytes(skb, 2 * ETH_ALEN, &h.inner_proto, sizeof(h.inner_proto), 0))
		return decap_verdict(RINGLB_DV_DROP_ERROR, TC_ACT_SHOT, bytes);
	return decap_verdict(RINGLB_DV_DECAP, TC_ACT_OK, bytes);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
