// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * A bare XDP_PASS program. Two uses: the baseline of perf/xdp (the cost of running any
 * XDP program), and the tests' veth peers (a veth drops frames sent to it with XDP_TX
 * unless its peer has an XDP program attached).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int ringlb_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
