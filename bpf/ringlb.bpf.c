// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * ringlb XDP data plane.
 *
 * Why this file is long: the program's steps (parse, look up, flow, encapsulate,
 * transmit) are in headers of their own (parsing.h, flow.h, encap.h, icmp.h); what
 * stays is the entry point and the per-family glue the verifier wants inline.
 *
 * Parses Ethernet (with VLAN tags), IPv4 / IPv6, TCP / UDP and looks the destination
 * up in the VIP index (`vip_index`, a copy of `vips`). Packets that are not for a VIP pass to the
 * kernel untouched; most of them already at a filter on the destination address, before the
 * transport header. For a VIP:
 *   - forward mode: the backend comes from the per-CPU flow table or, for a new flow,
 *     from the VIP's Maglev table at ringlb_reduce(ringlb_hash(client), table size) (the
 *     proxy's ip_hash computes the same). The packet is encapsulated in IPIP / IP6IP6 (outer
 * family: the backend's), the next hop comes from bpf_fib_lookup and the packet leaves with XDP_TX
 * (or a redirect when the route points at another device). The backend answers the client directly.
 *   - steer mode: the packet goes through the cpumap to the CPU of the worker that owns
 *     ringlb_reduce(hash(client), steer_workers); ringlb_reuseport (reuseport.bpf.c) hands the
 * connection to that worker's listener. ICMP errors about a forward-mode flow (a router telling the
 * VIP about a packet the backend sent) go to the backend of that flow. IP fragments to the one
 * forward-mode VIP of their address and protocol go by the client hash alone (no ports in later
 * fragments), every other fragment passes to the kernel.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "client_hash.h"
#include "consts.h"
#include "encap.h"
#include "flow.h"
#include "helpers.h"
#include "icmp.h"
#include "maps.h"
#include "parsing.h"
#include "steer.h"
#include "ringlb/abi/hash.h"
#include "ringlb/abi/xdp_abi.h"

/*
 * Set by the loader before load; the verifier sees them as constants. The others are in
 * client_hash.h (the hash key), steer.h (steer_workers) and flow.h (flow_buckets).
 */
/* Slots of each Maglev table: a placeholder, the loader sets LoadOptions::maglev_table_size. */
const volatile __u32 maglev_table_size = 1;
/* Outer source addresses of encapsulated packets. */
const volatile __u32 encap_source_v4 = 0;
const volatile __u32 encap_source_v6[4] = {};
/* How long a cached next hop is used before bpf_fib_lookup is asked again. */
const volatile __u64 nexthop_refresh_jiffies = 100;
/*
 * "Too big" replies, per CPU: one every icmp_interval_ns on average, with bursts of up to
 * icmp_burst_ns / icmp_interval_ns (the loader sets both from xdp.icmp_too_big_rate; an
 * interval of 0 sends none).
 */
const volatile __u64 icmp_interval_ns = 1000000;
const volatile __u64 icmp_burst_ns = 50000000;

/*
 * The VIP address pre-filter: 0 when no VIP's address has the filter bit of `folded` (the
 * destination's ringlb_addr_fold()), which settles most packets that are not for a
 * VIP with one bit test instead of a hash lookup.
 */
static __always_inline int maybe_vip(__u32 folded)
{
	struct ringlb_vip_filter *filter;
	__u32 zero = 0, bit;

	filter = bpf_map_lookup_elem(&vip_filter, &zero);
	if (!filter)
		return 0;
	bit = ringlb_vip_filter_mix(folded);
	return (filter->bits[(bit / 64) & (RINGLB_VIP_FILTER_BITS / 64 - 1)] >> (bit % 64)) & 1;
}

static __always_inline int vip_key_equal(const struct ringlb_vip_key *a,
					 const struct ringlb_vip_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/*
 * The last word of a VIP key (flow.h has the flow key's), built in a register so that it is stored
 * whole: the readers load keys by words, and a word written by several narrower stores
 * just before cannot be forwarded from them (the load waits until they reach the cache).
 */
static __always_inline __u32 vip_key_tail(__u16 port, __u8 proto, __u8 family)
{
	struct ringlb_vip_key k = {.port = port, .proto = proto, .family = family};
	__u32 w;

	__builtin_memcpy(&w, &k.port, sizeof(w));
	return w;
}

/*
 * The VIP of `key`, or NULL: from the VIP index (inlined array reads), and from the
 * `vips` hash only for VIPs the index could not place.
 */
static __always_inline struct ringlb_vip_info *vip_lookup(const struct ringlb_vip_key *key)
{
	__u32 zero = 0, at = ringlb_vip_index_slot(key);
	struct ringlb_vip_slot *s;
	void *index;
	int i;

	index = bpf_map_lookup_elem(&vip_index, &zero);
	if (!index)
		return bpf_map_lookup_elem(&vips, key);
#pragma unroll
	for (i = 0; i < RINGLB_VIP_INDEX_PROBES; i++) {
		__u32 slot = (at + i) & (RINGLB_VIP_INDEX_SLOTS - 1);

		s = bpf_map_lookup_elem(index, &slot);
		if (!s || s->key.family == RINGLB_FAMILY_NONE)
			break;
		if (vip_key_equal(&s->key, key))
			return &s->info;
	}
	at = RINGLB_VIP_INDEX_SLOTS;
	s = bpf_map_lookup_elem(index, &at);
	if (s && s->info.vip_id == 0)
		return NULL;
	return bpf_map_lookup_elem(&vips, key);
}

/* Counts the packet under `verdict` and returns `action`. */
static __always_inline int verdict(enum ringlb_verdict verdict, int action, __u64 bytes)
{
	counter_add(&verdict_stats, verdict, bytes);
	return action;
}

/* The backend id of Maglev slot ringlb_reduce(hash) of VIP `vip_id`, or -1. */
static __always_inline int maglev_pick(__u32 vip_id, __u64 hash, __u32 *backend_id)
{
	__u32 slot = ringlb_reduce(hash, maglev_table_size);
	void *table;
	__u32 *id;

	table = bpf_map_lookup_elem(&maglev_tables, &vip_id);
	if (!table)
		return -1;
	id = bpf_map_lookup_elem(table, &slot);
	if (!id)
		return -1;
	*backend_id = *id;
	return 0;
}

/*
 * Fills `nh` with the next hop toward `be` from bpf_fib_lookup: one lookup for the path
 * MTU (with the largest length, which the kernel answers with FRAG_NEEDED and the MTU)
 * and one for the MACs. Returns a BPF_FIB_LKUP_RET_* code.
 */
static __always_inline int nexthop_lookup(struct xdp_md *ctx, const struct packet *p,
					  const struct ringlb_backend *be, struct nexthop *nh)
{
	struct bpf_fib_lookup fib = {};
	__u32 mtu = 0xffff;
	int rc;

	if (be->family == RINGLB_FAMILY_V4) {
		fib.family = AF_INET;
		fib.ipv4_src = encap_source_v4;
		fib.ipv4_dst = be->addr[0];
	} else {
		fib.family = AF_INET6;
		fib.ipv6_src[0] = encap_source_v6[0];
		fib.ipv6_src[1] = encap_source_v6[1];
		fib.ipv6_src[2] = encap_source_v6[2];
		fib.ipv6_src[3] = encap_source_v6[3];
		__builtin_memcpy(fib.ipv6_dst, be->addr, 16);
	}
	fib.l4_protocol = p->flow.family == RINGLB_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	fib.ifindex = ctx->ingress_ifindex;
	fib.tot_len = 0xffff;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		mtu = fib.mtu_result;
		fib.tot_len = 0;
		fib.ifindex = ctx->ingress_ifindex;
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	__builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
	nh->ifindex = fib.ifindex;
	nh->ingress_ifindex = ctx->ingress_ifindex;
	nh->mtu = mtu;
	nh->expires = bpf_jiffies64() + nexthop_refresh_jiffies;
	return rc;
}

/*
 * The rate limit of "too big" replies: a virtual scheduling clock per CPU (GCRA). A reply
 * is allowed while the clock is at most icmp_burst_ns ahead of now; each one moves it on
 * by icmp_interval_ns.
 */
static __always_inline int icmp_allowed(void)
{
	__u32 zero = 0;
	__u64 *tat = bpf_map_lookup_elem(&icmp_clock, &zero);
	__u64 now;

	if (!tat || icmp_interval_ns == 0)
		return 0;
	now = bpf_ktime_get_ns();
	if (*tat > now + icmp_burst_ns)
		return 0;
	*tat = (*tat > now ? *tat : now) + icmp_interval_ns;
	return 1;
}

/*
 * Encapsulates the IP packet described by `p` toward backend `backend_id` and sends it,
 * counted as `sent` (RINGLB_V_TX_FORWARD, RINGLB_V_TX_ICMP_ERROR or RINGLB_V_TX_FRAGMENT)
 * when it leaves with XDP_TX, as RINGLB_V_REDIRECT_FORWARD when redirected.
 * The next hop comes from the per-CPU cache, refreshed through bpf_fib_lookup when it
 * expires. A packet too big for the path is answered (ICMP "too big") before the frame
 * is touched, unless it is an ICMP error itself (no ICMP about ICMP). Returns an XDP
 * action.
 */
static __always_inline int encap_and_send(struct xdp_md *ctx, const struct packet *p,
					  const struct ringlb_backend *be, __u32 backend_id,
					  enum ringlb_verdict sent, __u64 bytes, __u64 now)
{
	int may_reply = sent != RINGLB_V_TX_ICMP_ERROR;
	void *data, *data_end;
	/* Once: the field is three dependent loads (rxq, device, ifindex). */
	__u32 ingress = ctx->ingress_ifindex;
	__u32 outer_len, l3_off = p->l3_off;
	struct nexthop *nh;
	int rc, action;
	void *outer;

	nh = bpf_map_lookup_elem(&nexthops, &backend_id);
	if (!nh)
		return verdict(RINGLB_V_DROP_ERROR, XDP_DROP, bytes);
	if (nh->ingress_ifindex != ingress || now >= nh->expires) {
		rc = nexthop_lookup(ctx, p, be, nh);
		/*
		 * No neighbour entry: the kernel would drop the encapsulated packet as a martian
		 * (its source is our own address), so drop it here. The loader resolves every
		 * backend's next hop when it fills the maps; the client retransmits.
		 */
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			return verdict(RINGLB_V_DROP_NO_NEIGH, XDP_DROP, bytes);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return verdict(RINGLB_V_DROP_FIB, XDP_DROP, bytes);
	}

	outer_len = be->family == RINGLB_FAMILY_V4 ? IPV4_HDR_LEN : IPV6_HDR_LEN;
	if (p->l3_len + outer_len > nh->mtu) {
		enum ringlb_verdict v;

		if (!may_reply)
			return verdict(RINGLB_V_DROP_FIB, XDP_DROP, bytes);
		/*
		 * IPv4 without DF asks routers to fragment, which XDP cannot: no "fragmentation
		 * needed" (the sender would not expect one), the packet is dropped and counted.
		 */
		if (p->flow.family == RINGLB_FAMILY_V4 && !p->df)
			return verdict(RINGLB_V_DROP_TOO_BIG_NO_DF, XDP_DROP, bytes);
		if (!icmp_allowed())
			return verdict(RINGLB_V_DROP_TOO_BIG_LIMITED, XDP_DROP, bytes);
		if (p->flow.family == RINGLB_FAMILY_V4)
			v = send_too_big_v4(ctx, p, nh->mtu - outer_len);
		else
			v = send_too_big_v6(ctx, p, nh->mtu - outer_len);
		return verdict(v, v == RINGLB_V_TX_TOO_BIG ? XDP_TX : XDP_DROP, bytes);
	}

	/*
	 * The old L2 header is not saved: after adjust_head it starts outer_len bytes into the
	 * frame, past the new one, and its tags are copied from there. Fewer values live
	 * across the helper call means fewer spills.
	 */
	if (l3_off > L2_MAX_LEN || bpf_xdp_adjust_head(ctx, -(int)outer_len))
		return verdict(RINGLB_V_DROP_ERROR, XDP_DROP, bytes);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (be->family == RINGLB_FAMILY_V4) {
		if (l2_rewrite_moved(data, data_end, IPV4_HDR_LEN, p->vlan_depth, nh->macs,
				     bpf_htons(ETH_P_IP)) < 0)
			return verdict(RINGLB_V_DROP_ERROR, XDP_DROP, bytes);
		outer = l3_ptr(data, l3_off);
		if (outer + IPV4_HDR_LEN > data_end)
			return verdict(RINGLB_V_DROP_ERROR, XDP_DROP, bytes);
		write_outer_v4(outer, p, be, encap_source_v4);
	} else {
		__u32 src[4] = {encap_source_v6[0], encap_source_v6[1], encap_source_v6[2],
				encap_source_v6[3]};
		__u32 label = (p->flow.src[0] ^ p->flow.src[1] ^ p->flow.src[2] ^ p->flow.src[3] ^
			       ((__u32)p->flow.sport << 16 | p->flow.dport)) &
			      0xfffff;

		if (l2_rewrite_moved(data, data_end, IPV6_HDR_LEN, p->vlan_depth, nh->macs,
				     bpf_htons(ETH_P_IPV6)) < 0)
			return verdict(RINGLB_V_DROP_ERROR, XDP_DROP, bytes);
		outer = l3_ptr(data, l3_off);
		if (outer + IPV6_HDR_LEN > data_end)
			return verdict(RINGLB_V_DROP_ERROR, XDP_DROP, bytes);
		write_outer_v6(outer, p, be, src, label);
	}

	if (nh->ifindex == ingress)
		return verdict(sent, XDP_TX, bytes);
	action = bpf_redirect(nh->ifindex, 0);
	return verdict(RINGLB_V_REDIRECT_FORWARD, action, bytes);
}

/*
 * forward mode, for packets the flow table did not settle: Maglev, then encapsulate.
 * `stale_flow`: the packet's flow entry names a retired VIP or a removed backend.
 */
static __always_inline int forward(struct xdp_md *ctx, struct packet *p,
				   const struct ringlb_vip_info *info,
				   struct ringlb_flow_bucket *bucket, __u64 fp, int stale_flow,
				   __u64 bytes)
{
	int is_syn = p->flow.proto == IPPROTO_TCP &&
		     (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	struct ringlb_backend *be;
	__u64 now = bpf_jiffies64();
	__u32 backend_id;

	if (maglev_pick(info->vip_id, client_hash(p->flow.src, p->flow.family), &backend_id) < 0)
		return verdict(RINGLB_V_DROP_NO_BACKEND, XDP_DROP, bytes);
	be = bpf_map_lookup_elem(&backends, &backend_id);
	if (!be || be->family == RINGLB_FAMILY_NONE)
		return verdict(RINGLB_V_DROP_NO_BACKEND, XDP_DROP, bytes);
	/*
	 * Per-flow state only where a flow starts (TCP SYN, first UDP datagram) or where its
	 * entry went stale; a TCP flow we did not see start is balanced but not inserted.
	 */
	if (bucket && (is_syn || stale_flow || p->flow.proto == IPPROTO_UDP)) {
		/* A flow that had an entry is established; a new one is embryonic. */
		flow_insert(bucket, fp, ringlb_flow_bind(backend_id, info->vip_id, info->epoch),
			    now, stale_flow && !is_syn ? FLOW_ESTABLISHED : 0);
	}
	counter_add(&backend_stats, backend_id, bytes);
	return encap_and_send(ctx, p, be, backend_id, RINGLB_V_TX_FORWARD, bytes, now);
}

/*
 * An IP fragment to a VIP address (`proto`: the transport protocol its header names). Later
 * fragments carry no ports, so the VIP comes from `frag_vips` (address and protocol) and the
 * backend from the Maglev slot of the client's hash, never from the flow table: every
 * fragment of a datagram then goes where its first one goes. Without one forward-mode VIP
 * for the address and protocol, the kernel gets the fragment.
 */
static __always_inline int send_fragment(struct xdp_md *ctx, struct packet *p, int proto,
					 __u64 bytes)
{
	struct ringlb_vip_key key = {};
	struct ringlb_vip_info *info;
	struct ringlb_backend *be;
	__u32 backend_id;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return verdict(RINGLB_V_PASS_FRAGMENT, XDP_PASS, bytes);
	__builtin_memcpy(key.addr, p->flow.dst, sizeof(key.addr));
	key.proto = proto;
	key.family = p->flow.family;
	info = bpf_map_lookup_elem(&frag_vips, &key);
	if (!info || info->mode != RINGLB_MODE_FORWARD)
		return verdict(RINGLB_V_PASS_FRAGMENT, XDP_PASS, bytes);
	counter_add(&vip_stats, info->vip_id, bytes);
	if (maglev_pick(info->vip_id, client_hash(p->flow.src, p->flow.family), &backend_id) < 0)
		return verdict(RINGLB_V_DROP_NO_BACKEND, XDP_DROP, bytes);
	be = bpf_map_lookup_elem(&backends, &backend_id);
	if (!be || be->family == RINGLB_FAMILY_NONE)
		return verdict(RINGLB_V_DROP_NO_BACKEND, XDP_DROP, bytes);
	counter_add(&backend_stats, backend_id, bytes);
	return encap_and_send(ctx, p, be, backend_id, RINGLB_V_TX_FRAGMENT, bytes, bpf_jiffies64());
}

/* steer mode: to the CPU of the worker that owns hash(client). */
static __always_inline int steer(struct packet *p, __u64 bytes)
{
	__u32 worker;
	int action;

	if (steer_workers == 0)
		return verdict(RINGLB_V_PASS_STEER_NO_CPU, XDP_PASS, bytes);
	worker = steer_worker(p->flow.src, p->flow.family);
	action = bpf_redirect_map(&cpu_map, worker, XDP_PASS);
	if (action == XDP_REDIRECT)
		return verdict(RINGLB_V_REDIRECT_STEER, action, bytes);
	return verdict(RINGLB_V_PASS_STEER_NO_CPU, action, bytes);
}

/*
 * ICMP / ICMPv6. An error whose quoted packet left a forward-mode VIP (backend -> client,
 * sent directly by the backend) belongs to that flow's backend: find it in the flow
 * table by the reversed quoted 5-tuple, else by the Maglev slot of the quoted
 * destination (the client), and forward the whole ICMP packet there. Anything else
 * passes to the kernel.
 */
static __always_inline int handle_icmp(struct xdp_md *ctx, struct packet *p, struct hdr_cursor *nh,
				       __u64 bytes)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ringlb_vip_key key = {};
	struct ringlb_flow_key reverse = {};
	struct ringlb_vip_info *info;
	struct ringlb_flow_bucket *bucket;
	struct ringlb_backend *be;
	__u32 backend_id;
	int slot = -1;
	__u64 fp;
	__u16 *ports;
	__u8 type;

	if (nh->pos + ICMP_HDR_LEN > data_end)
		return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
	type = *(__u8 *)nh->pos;
	if (p->flow.family == RINGLB_FAMILY_V4) {
		struct iphdr *inner = nh->pos + ICMP_HDR_LEN;

		if (type != ICMP_DEST_UNREACH && type != ICMP_TIME_EXCEEDED &&
		    type != ICMP_PARAMETERPROB)
			return verdict(RINGLB_V_PASS_ICMP, XDP_PASS, bytes);
		if ((void *)(inner + 1) > data_end || inner->ihl < 5)
			return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
		ports = (void *)inner + inner->ihl * 4;
		if ((void *)(ports + 2) > data_end)
			return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
		key.addr[0] = inner->saddr;
		key.proto = inner->protocol;
		reverse.src[0] = inner->daddr;
		reverse.dst[0] = inner->saddr;
	} else {
		struct ipv6hdr *inner = nh->pos + ICMP_HDR_LEN;

		if (type != ICMPV6_DEST_UNREACH && type != ICMPV6_PKT_TOOBIG &&
		    type != ICMPV6_TIME_EXCEED && type != ICMPV6_PARAMPROB)
			return verdict(RINGLB_V_PASS_ICMP, XDP_PASS, bytes);
		ports = (void *)(inner + 1);
		if ((void *)(ports + 2) > data_end)
			return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
		__builtin_memcpy(key.addr, &inner->saddr, 16);
		key.proto = inner->nexthdr;
		__builtin_memcpy(reverse.src, &inner->daddr, 16);
		__builtin_memcpy(reverse.dst, &inner->saddr, 16);
	}
	key.port = ports[0];
	key.family = p->flow.family;
	info = vip_lookup(&key);
	if (!info || info->mode != RINGLB_MODE_FORWARD)
		return verdict(RINGLB_V_PASS_ICMP, XDP_PASS, bytes);

	reverse.sport = ports[1];
	reverse.dport = ports[0];
	reverse.proto = key.proto;
	reverse.family = key.family;
	bucket = flow_bucket(&reverse, &fp);
	if (bucket)
		slot = flow_find(bucket, fp);
	if (bucket && slot >= 0) {
		backend_id = ringlb_flow_backend(bucket->ways[slot & (RINGLB_FLOW_WAYS - 1)].bind);
	} else if (maglev_pick(info->vip_id, client_hash(reverse.src, reverse.family),
			       &backend_id) < 0) {
		return verdict(RINGLB_V_DROP_NO_BACKEND, XDP_DROP, bytes);
	}
	be = bpf_map_lookup_elem(&backends, &backend_id);
	if (!be || be->family == RINGLB_FAMILY_NONE)
		return verdict(RINGLB_V_DROP_NO_BACKEND, XDP_DROP, bytes);
	counter_add(&vip_stats, info->vip_id, bytes);
	counter_add(&backend_stats, backend_id, bytes);
	return encap_and_send(ctx, p, be, backend_id, RINGLB_V_TX_ICMP_ERROR, bytes,
			      bpf_jiffies64());
}

SEC("xdp")
int ringlb_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct hdr_cursor nh = {.pos = data};
	struct ringlb_vip_info *info;
	struct ringlb_flow_bucket *bucket;
	struct packet p = {};
	int stale_flow = 0, slot, v4;
	__u64 fp;
	int h_proto, proto;

	h_proto = parse_ethhdr(&nh, data_end, &p.vlan_depth);
	if (h_proto < 0)
		return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
	p.l3_off = nh.pos - data;
	/*
	 * Most packets are not for a VIP: the destination address alone settles them, before
	 * the rest of the IP header and the transport header are parsed.
	 */
	if (h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = nh.pos;

		if ((void *)(iph + 1) > data_end)
			return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
		if (!maybe_vip(iph->daddr))
			return verdict(RINGLB_V_PASS_NOT_VIP, XDP_PASS, bytes);
		proto = parse_iphdr(&nh, data, data_end, &p);
	} else if (h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = nh.pos;
		__u32 *d = (__u32 *)&ip6h->daddr;

		if ((void *)(ip6h + 1) > data_end)
			return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
		if (!maybe_vip(ringlb_addr_fold(d)))
			return verdict(RINGLB_V_PASS_NOT_VIP, XDP_PASS, bytes);
		proto = parse_ip6hdr(&nh, data, data_end, &p);
	} else {
		return verdict(RINGLB_V_PASS_NOT_IP, XDP_PASS, bytes);
	}
	if (proto < 0)
		return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
	if (p.fragment)
		return send_fragment(ctx, &p, proto, bytes);

	switch (proto) {
	case IPPROTO_TCP:
		if (parse_tcphdr(&nh, data_end, &p) < 0)
			return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
		break;
	case IPPROTO_UDP:
		if (parse_udphdr(&nh, data_end, &p) < 0)
			return verdict(RINGLB_V_PASS_MALFORMED, XDP_PASS, bytes);
		break;
	case IPPROTO_ICMP:
		if (p.flow.family != RINGLB_FAMILY_V4)
			return verdict(RINGLB_V_PASS_NOT_VIP, XDP_PASS, bytes);
		return handle_icmp(ctx, &p, &nh, bytes);
	case IPPROTO_ICMPV6:
		if (p.flow.family != RINGLB_FAMILY_V6)
			return verdict(RINGLB_V_PASS_NOT_VIP, XDP_PASS, bytes);
		return handle_icmp(ctx, &p, &nh, bytes);
	default:
		return verdict(RINGLB_V_PASS_NOT_VIP, XDP_PASS, bytes);
	}
	((__u64 *)&p.flow)[4] = flow_key_tail(p.flow.sport, p.flow.dport, proto, p.flow.family);

	/*
	 * Established forward-mode flows: the flow table alone settles them (one per-CPU
	 * array access), as long as their VIP's epoch holds and their backend is still there.
	 * A client's RST ends its flow: forwarded, then the slot is freed.
	 */
	v4 = p.flow.family == RINGLB_FAMILY_V4;
	bucket = v4 ? flow_bucket_as(&p.flow, &fp, 1) : flow_bucket_as(&p.flow, &fp, 0);
	if (bucket && !(p.flow.proto == IPPROTO_TCP &&
			(p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)) {
		slot = flow_find(bucket, fp);
		if (slot >= 0) {
			struct ringlb_flow_entry *e = &bucket->ways[slot & (RINGLB_FLOW_WAYS - 1)];
			__u32 bind = e->bind;
			__u32 backend_id = ringlb_flow_backend(bind),
			      vip_id = ringlb_flow_vip(bind);
			struct ringlb_backend *be;
			__u32 *epoch, stamp;
			__u64 now;

			epoch = bpf_map_lookup_elem(&vip_epochs, &vip_id);
			be = bpf_map_lookup_elem(&backends, &backend_id);
			if (epoch && ringlb_flow_epoch_matches(bind, *epoch) && be &&
			    be->family != RINGLB_FAMILY_NONE) {
				now = bpf_jiffies64();
				stamp = flow_stamp(now, FLOW_ESTABLISHED);
				if (p.tcp_flags & TCP_FLAG_RST) {
					e->fp = 0;
				} else if (e->used != stamp) {
					/* The flow's second packet promotes its entry. */
					if (!(e->used & FLOW_ESTABLISHED))
						flow_event(RINGLB_FE_PROMOTED);
					e->used = stamp;
				}
				counter_add(&vip_stats, vip_id, bytes);
				counter_add(&backend_stats, backend_id, bytes);
				return encap_and_send(ctx, &p, be, backend_id, RINGLB_V_TX_FORWARD,
						      bytes, now);
			}
			stale_flow = 1;
		}
	}

	struct ringlb_vip_key key;
	__u32 *kw = (__u32 *)&key;

	/* As whole words, for the index's word loads (see flow_key_tail). */
	kw[0] = p.flow.dst[0];
	kw[1] = p.flow.dst[1];
	kw[2] = p.flow.dst[2];
	kw[3] = p.flow.dst[3];
	kw[4] = vip_key_tail(p.flow.dport, proto, p.flow.family);
	info = vip_lookup(&key);
	if (!info)
		return verdict(RINGLB_V_PASS_NOT_VIP, XDP_PASS, bytes);
	counter_add(&vip_stats, info->vip_id, bytes);
	if (info->mode == RINGLB_MODE_STEER)
		return steer(&p, bytes);
	return forward(ctx, &p, info, bucket, fp, stale_flow, bytes);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
