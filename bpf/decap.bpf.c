// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * ringlb decapsulation for backends. Strips the outer IPv4 or IPv6 header of IPIP,
 * IPv6-in-IPv4, IPv4-in-IPv6 and IP6IP6 packets (what ringlb's forward mode sends), so
 * the inner packet, addressed to a VIP the backend holds on lo, enters the stack as if it
 * had arrived directly. Everything else passes untouched. Production backends may use
 * the kernel's ipip / ip6tnl devices instead.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "helpers.h"
#include "parsing.h"
#include "ringlb/xdp_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RINGLB_DV_MAX);
	__type(key, __u32);
	__type(value, struct ringlb_counter);
} decap_stats SEC(".maps");

static __always_inline int decap_verdict(enum ringlb_decap_verdict v, int action, __u64 bytes)
{
	counter_add(&decap_stats, v, bytes);
	return action;
}

SEC("xdp")
int ringlb_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct hdr_cursor nh = {.pos = data};
	struct packet p = {};
	struct l2_copy l2;
	__u32 outer_len;
	__u16 inner_proto;
	int h_proto, proto;

	h_proto = parse_ethhdr(&nh, data_end, &p.vlan_depth);
	if (h_proto < 0)
		return decap_verdict(RINGLB_DV_PASS, XDP_PASS, bytes);
	p.l3_off = nh.pos - data;
	if (h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = nh.pos;

		if ((void *)(iph + 1) > data_end)
			return decap_verdict(RINGLB_DV_PASS, XDP_PASS, bytes);
		if (iph->protocol != IPPROTO_IPIP && iph->protocol != IPPROTO_IPV6)
			return decap_verdict(RINGLB_DV_PASS, XDP_PASS, bytes);
		proto = parse_iphdr(&nh, data, data_end, &p);
		if (proto < 0 || p.fragment)
			return decap_verdict(RINGLB_DV_PASS_MALFORMED, XDP_PASS, bytes);
	} else if (h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = nh.pos;

		if ((void *)(ip6h + 1) > data_end)
			return decap_verdict(RINGLB_DV_PASS, XDP_PASS, bytes);
		/* ringlb sends no extension headers in the outer IPv6 header. */
		if (ip6h->nexthdr != IPPROTO_IPIP && ip6h->nexthdr != IPPROTO_IPV6)
			return decap_verdict(RINGLB_DV_PASS, XDP_PASS, bytes);
		proto = parse_ip6hdr(&nh, data, data_end, &p);
		if (proto < 0)
			return decap_verdict(RINGLB_DV_PASS_MALFORMED, XDP_PASS, bytes);
	} else {
		return decap_verdict(RINGLB_DV_PASS, XDP_PASS, bytes);
	}

	outer_len = p.l4_off - p.l3_off;
	inner_proto = proto == IPPROTO_IPIP ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	if (outer_len > 60 || l2_save(data, data_end, &l2) < 0 || p.l3_off > L2_MAX_LEN)
		return decap_verdict(RINGLB_DV_PASS_MALFORMED, XDP_PASS, bytes);
	if (bpf_xdp_adjust_head(ctx, (int)outer_len))
		return decap_verdict(RINGLB_DV_DROP_ERROR, XDP_DROP, bytes);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l2_write(data, data_end, &l2, p.vlan_depth, (__u8 *)&l2, (__u8 *)&l2 + ETH_ALEN,
		     inner_proto) < 0)
		return decap_verdict(RINGLB_DV_DROP_ERROR, XDP_DROP, bytes);
	return decap_verdict(RINGLB_DV_DECAP, XDP_PASS, bytes);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
