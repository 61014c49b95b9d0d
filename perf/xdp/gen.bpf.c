// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Packet generator for perf/xdp/pps.sh, run with BPF_PROG_TEST_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES): every run sends the template frame (an IPv4 TCP packet)
 * out of the device given as ingress with XDP_TX. Before sending it gives the frame a
 * TCP source port from a run counter, so the frames cycle over `flows` flows (a power of
 * two), and sets the TCP flags.
 *
 * Live frames are recycled without being reset, and a veth peer works on the very page
 * the generator sent: after the balancer has encapsulated a frame in place and sent it
 * back, the page returns to the generator's pool holding the encapsulated bytes. So every
 * run first writes the template's headers (`header`, the first HEADER_BYTES of the frame)
 * back, then varies them.
 */
#include <linux/bpf.h>
// (after linux/bpf.h, which defines its types)
#include <bpf/bpf_helpers.h>

#define ETH_IP_LEN (14 + 20)
#define HEADER_BYTES 64 /* Ethernet, IPv4 and TCP headers and the payload's start */

const volatile __u32 flows = 1;     /* a power of two */
const volatile __u32 new_flows = 0; /* 1: every frame a new flow (port and address vary) */
const volatile __u16 first_port = 1024;
const volatile __u8 tcp_flags = 0x10;               /* ACK */
const volatile __u64 header[HEADER_BYTES / 8] = {}; /* the template frame's first bytes */

__u64 runs = 0;

SEC("xdp")
int gen(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  __u8* tcp = data + ETH_IP_LEN;
  __u8* src = data + 14 + 12;
  __u64 run = runs++;
  __u16 port;
  int i;

  if (data + HEADER_BYTES > data_end)
    return XDP_ABORTED;
#pragma unroll
  for (i = 0; i < HEADER_BYTES / 8; i++)
    ((__u64*)data)[i] = header[i];
  if (new_flows) {
    port = first_port + (__u16)run;
    src[3] = (__u8)(run >> 16);
  } else {
    port = first_port + (__u16)(run & (flows - 1));
  }
  tcp[0] = port >> 8;
  tcp[1] = port & 0xff;
  tcp[13] = tcp_flags;
  return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* The generator side's receiver: frames the balancer sends back are dropped. */
SEC("xdp")
int drop(struct xdp_md* ctx) {
  return XDP_DROP;
}

/* A bare forwarder for the baseline: every frame back out where it came from. */
SEC("xdp")
int bounce(struct xdp_md* ctx) {
  return XDP_TX;
}
