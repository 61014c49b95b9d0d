// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Floors for bench_xdp: the least any program must do for the two per-packet targets,
 * timed the same way as ringlb_xdp, so that "above bare" has a reference on this machine.
 *   - floor_parse: bounds-checked Ethernet, IPv4 (IHL) and TCP (data offset) parse of
 *     the bench packet, then XDP_PASS: what any program that looks at the 5-tuple pays.
 *   - floor_encap: the same parse, then bpf_xdp_adjust_head(-20), a fixed Ethernet
 *     header and a fixed outer IPv4 header with its checksum, then XDP_TX: what any
 *     IPIP-encapsulating program pays, with no lookup of any kind.
 * Neither handles VLAN tags, IPv6 or anything the bench does not send: they are
 * measuring sticks, never a data plane.
 */
#include <linux/bpf.h>
// (after linux/bpf.h, which defines its types)
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define ETH_LEN 14
#define IP_LEN 20

static __always_inline int parse(void* data, void* data_end, __u32* words) {
  __u8* eth = data;
  __u8* ip = data + ETH_LEN;
  __u8* tcp;

  if ((void*)(ip + IP_LEN) > data_end)
    return -1;
  if (*(__u16*)(eth + 12) != bpf_htons(0x0800) || (ip[0] & 0xf0) != 0x40 || ip[9] != 6)
    return -1;
  tcp = ip + (ip[0] & 0x0f) * 4;
  if ((void*)(tcp + 20) > data_end)
    return -1;
  words[0] = *(__u32*)(ip + 12);  // source
  words[1] = *(__u32*)(ip + 16);  // destination
  words[2] = *(__u32*)tcp;        // ports
  return (tcp[12] >> 4) * 4 >= 20 ? 0 : -1;
}

SEC("xdp")
int floor_parse(struct xdp_md* ctx) {
  __u32 words[3];

  // The verdict depends on every check and on the 5-tuple read, so that the compiler
  // keeps the parse (a program whose result ignores it compiles to "return XDP_PASS").
  if (parse((void*)(long)ctx->data, (void*)(long)ctx->data_end, words) < 0 ||
      (words[0] ^ words[1] ^ words[2]) == 0)
    return XDP_DROP;
  return XDP_PASS;
}

SEC("xdp")
int floor_encap(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  __u32 words[3], *w;
  __u16 tot_len;
  __u64 sum;
  int i;

  if (parse(data, data_end, words) < 0)
    return XDP_PASS;
  tot_len = (__u16)(data_end - data - ETH_LEN + IP_LEN);
  if (bpf_xdp_adjust_head(ctx, -IP_LEN))
    return XDP_ABORTED;
  data = (void*)(long)ctx->data;
  data_end = (void*)(long)ctx->data_end;
  if (data + ETH_LEN + IP_LEN > data_end)
    return XDP_ABORTED;
  // Ethernet: fixed MACs, EtherType IPv4.
  w = data;
  w[0] = 0x00000002;
  w[1] = 0x02000100;
  w[2] = 0x00000000;
  *(__u16*)(data + 12) = bpf_htons(0x0800);
  // Outer IPv4 (IPIP) from 10.0.0.1 to the destination of the inner packet, checksummed.
  w = data + ETH_LEN;
  w[0] = bpf_htonl(0x45000000 | tot_len);
  w[1] = bpf_htonl(0x4000);
  w[2] = bpf_htonl(64 << 24 | 4 << 16);
  w[3] = bpf_htonl(0x0a000001);
  w[4] = words[1];
  sum = 0;
#pragma unroll
  for (i = 0; i < 5; i++)
    sum += w[i];
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  *(__u16*)(data + ETH_LEN + 10) = (__u16)~sum;
  return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
