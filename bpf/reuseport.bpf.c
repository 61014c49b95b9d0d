// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * ringlb steer mode, the socket half: an sk_reuseport program that hands each connection
 * to the listener of the worker that owns the client (steer.h), the worker whose CPU
 * ringlb_xdp steered the packets to. Its own object, apart from the data plane: ringlbd
 * loads one instance per proxy VIP (a socket array holds one reuseport group), with no
 * other map than that array.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "steer.h"
#include "ringlb/abi/xdp_abi.h"

/* worker index -> that worker's listening socket. Filled by ringlbd; not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, RINGLB_MAX_WORKERS);
	__type(key, __u32);
	__type(value, __u64);
} worker_sockets SEC(".maps");

/*
 * Picks the listener of the worker that owns the client. On any failure the kernel's
 * own reuseport choice stands.
 */
SEC("sk_reuseport")
int ringlb_reuseport(struct sk_reuseport_md *md)
{
	__u32 addr[4] = {};
	__u32 worker;

	if (steer_workers == 0)
		return SK_PASS;
	if (md->eth_protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes_relative(md, offsetof(struct iphdr, saddr), addr, 4,
						BPF_HDR_START_NET))
			return SK_PASS;
		worker = steer_worker(addr, RINGLB_FAMILY_V4);
	} else if (md->eth_protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes_relative(md, offsetof(struct ipv6hdr, saddr), addr, 16,
						BPF_HDR_START_NET))
			return SK_PASS;
		worker = steer_worker(addr, RINGLB_FAMILY_V6);
	} else {
		return SK_PASS;
	}
	bpf_sk_select_reuseport(md, &worker_sockets, &worker, 0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
