// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Benchmark wrapper for BPF_PROG_TEST_RUN with repeat = N.
 *
 * With repeat = N the kernel runs the program N times on one buffer and does not reset
 * it, so from the second run an encapsulating program would see its own output. This
 * program puts the original packet back before every run and then tail-calls the
 * program under test (slot 0 of `target`):
 *   - it moves the packet start back to where the original started (undoing an
 *     encapsulation's bpf_xdp_adjust_head), using the original length;
 *   - it rewrites the first RESTORE_BYTES bytes from `original`: an encapsulation
 *     prepends its headers, so of the original frame it overwrites only the Ethernet
 *     header (the bench's packets carry no VLAN tag). The rest stays intact, and the
 *     bench checks that it did.
 *   - with vary_flow set, it gives every run a new client: source port and the low
 *     byte of the source address from a run counter, so each run is a new flow; with
 *     flow_count (a power of two) set as well, the counter wraps at flow_count, so the
 *     runs cycle through that many flows.
 * It writes nothing else. A load that spans bytes stored just before, in more than one
 * store, waits until those stores leave the store buffer (a failed store-to-load
 * forward, some 10 cycles here): restoring 64 bytes as eight words charged every parse
 * of the IPv4 destination address (bytes 30..33, across two words) a stall that a frame
 * written by a NIC does not have. For the same reason the varied address and ports are
 * written as the 32-bit words programs load them as.
 * Its own cost is measured by wrapping the bare XDP_PASS program the same way (with the
 * same vary_flow) and is subtracted. The wrapper does the same work whatever the program
 * did: it calls bpf_xdp_adjust_head on every run, with a delta of 0 after a program that
 * left the packet's start alone. The verdict of the last run is the tail-called program's.
 */
#include <linux/bpf.h>
// (after linux/bpf.h, which defines its types)
#include <bpf/bpf_helpers.h>

#define RESTORE_BYTES 16

/* Set before load. */
const volatile __u32 packet_len = 0;
const volatile __u32 port_offset = 0; /* of the TCP/UDP source port */
const volatile __u32 addr_offset = 0; /* of the source address's last 32-bit word */
const volatile __u32 vary_flow = 0;
const volatile __u32 flow_count = 0; /* 0: no wrap */

struct original_packet {
  __u64 words[RESTORE_BYTES / 8];
  __u32 addr_word; /* the source address's last word, as in the packet */
  __u32 port_word; /* source and destination port, as in the packet */
  __u64 runs;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct original_packet);
} original SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} target SEC(".maps");

SEC("xdp")
int restore(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  struct original_packet* orig;
  __u32 zero = 0;
  __u64 len;
  int delta, i;

  orig = bpf_map_lookup_elem(&original, &zero);
  if (!orig)
    return XDP_ABORTED;
  /* Called even when delta is 0 (a program that did not encapsulate), so that every row
   * and its baseline pay the same wrapper work. */
  len = data_end - data;
  /* In a register of its own: with ALU32, clang would subtract the pointers' low halves,
   * which the verifier refuses (32-bit pointer arithmetic). */
  asm volatile("" : "+r"(len));
  delta = (int)len - (int)packet_len;
  if (bpf_xdp_adjust_head(ctx, delta))
    return XDP_ABORTED;
  data = (void*)(long)ctx->data;
  data_end = (void*)(long)ctx->data_end;
  if (data + RESTORE_BYTES > data_end)
    return XDP_ABORTED;
#pragma unroll
  for (i = 0; i < RESTORE_BYTES / 8; i++)
    ((__u64*)data)[i] = orig->words[i];
  if (vary_flow) {
    __u64 run = orig->runs++;
    if (flow_count)
      run &= flow_count - 1;
    __u32* port = data + (port_offset & 0x3f);
    __u32* addr = data + (addr_offset & 0x3f);

    if ((void*)(port + 1) > data_end || (void*)(addr + 1) > data_end)
      return XDP_ABORTED;
    /* In memory order: the source port's two bytes from the counter, the destination
     * port kept; the address word's last byte from the counter. */
    *port = (orig->port_word & 0xffff0000) | ((__u32)(run >> 8) & 0xff) | ((__u32)run & 0xff) << 8;
    *addr = (orig->addr_word & 0x00ffffff) | ((__u32)(run >> 16) & 0xff) << 24;
  }
  bpf_tail_call(ctx, &target, 0);
  return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
