// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * ringlb XDP program. For now it passes every packet and counts it per CPU; the XDP
 * data-plane issue fills in parsing, VIP lookup, forward and steer modes. It already
 * includes the shared client hash so that the BPF build path compiles it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ringlb/hash.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

SEC("xdp")
int ringlb_xdp(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&packets, &zero);

	(void)ctx;
	if (!count)
		return XDP_PASS;
	*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
