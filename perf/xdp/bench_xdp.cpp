// ns per packet of the XDP program, through BPF_PROG_TEST_RUN's `duration`.
//
// Every iteration runs the program once (repeat = 1) on a fresh copy of the packet: with
// repeat = N the kernel reuses one buffer, so from the second run an encapsulating
// program would see its own output. The verdict of each run is checked. A bare XDP_PASS
// program, timed the same way, is the baseline: the figures that matter are the
// differences (the test_run harness's own timer cost is in every row).
//
// Set-up: a private network namespace (unshare) with a veth pair and fixed neighbour
// entries so that bpf_fib_lookup succeeds, as in tests/xdp. Needs root; exits with a
// message otherwise.
//
// Why this file is long: one row per packet shape and table state, all timed by the
// same restoring harness against the same bare and floor programs in one binary, so
// that every ratio is measured in one run.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "lab.h"
#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"
#include "ringlb_floor.skel.h"
#include "ringlb_pass.skel.h"
#include "ringlb_restore.skel.h"

namespace {

using Bytes = std::vector<uint8_t>;

constexpr const char* kConfig = R"(
[daemon]
hash_seed = "0f0e0d0c0b0a09080706050403020100"
[[vip]]
name = "web"
listen = "10.0.0.10:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.200.0.1"
[[vip.backend]]
name = "b2"
address = "10.200.0.2"
[[vip.backend]]
name = "b3"
address = "10.200.0.3"
[[vip]]
name = "web6"
listen = "[fd00::10]:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "fd00:200::1"
[[vip.backend]]
name = "b2"
address = "fd00:200::2"
)";

struct Env {
  std::optional<ringlb::xdp::XdpProgram> program;
  // The same program and config with a flow table of kSmallTableFlows per CPU: the
  // new-flow row again, to show what the table's size costs a packet.
  std::optional<ringlb::xdp::XdpProgram> small_table;
  ringlb_pass* pass = nullptr;
  ringlb_floor* floor = nullptr;  // perf/xdp/floor.bpf.c
  int ifindex = 0;
};
Env env;

void put16(Bytes& b, uint16_t v) {
  b.push_back(v >> 8);
  b.push_back(v & 0xff);
}

// Ethernet + IPv4/IPv6 + TCP with `flags`, 64 bytes of payload. Checksums do not matter
// to the program and are left zero.
Bytes tcp_packet(bool v6, const char* src, const char* dst, uint16_t sport, uint8_t flags) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x10};
  const size_t payload = 64;
  if (!v6) {
    put16(b, 0x0800);
    const uint16_t total = 20 + 20 + payload;
    const uint8_t ip[] = {0x45, 0, uint8_t(total >> 8), uint8_t(total), 0, 0, 0x40, 0, 64, 6, 0, 0};
    b.insert(b.end(), ip, ip + sizeof(ip));
    in_addr a;
    inet_pton(AF_INET, src, &a);
    b.insert(b.end(), reinterpret_cast<uint8_t*>(&a), reinterpret_cast<uint8_t*>(&a) + 4);
    inet_pton(AF_INET, dst, &a);
    b.insert(b.end(), reinterpret_cast<uint8_t*>(&a), reinterpret_cast<uint8_t*>(&a) + 4);
  } else {
    put16(b, 0x86dd);
    const uint16_t len = 20 + payload;
    const uint8_t ip[] = {0x60, 0, 0, 0, uint8_t(len >> 8), uint8_t(len), 6, 64};
    b.insert(b.end(), ip, ip + sizeof(ip));
    in6_addr a;
    inet_pton(AF_INET6, src, &a);
    b.insert(b.end(), a.s6_addr, a.s6_addr + 16);
    inet_pton(AF_INET6, dst, &a);
    b.insert(b.end(), a.s6_addr, a.s6_addr + 16);
  }
  put16(b, sport);
  put16(b, 80);
  const uint8_t tcp[] = {0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0};
  b.insert(b.end(), tcp, tcp + sizeof(tcp));
  b.resize(b.size() + payload, 'x');
  return b;
}

// One run on a fresh copy of `packet`; returns the kernel's duration in ns, or -1 when
// the verdict is not `want`.
int64_t run_once(int prog_fd, const Bytes& packet, Bytes& out, uint32_t want) {
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(packet.size());
  ctx.ingress_ifindex = static_cast<uint32_t>(env.ifindex);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(packet.size()),
              .data_size_out = static_cast<uint32_t>(out.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = 1);
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0 || opts.retval != want) {
    return -1;
  }
  return opts.duration;
}

// Times `prog_fd` on `packet`; `vary_port` rewrites the TCP source port each iteration so
// that every SYN is a new flow.
void time_program(benchmark::State& state, int prog_fd, Bytes packet, uint32_t want,
                  bool vary_port) {
  Bytes out(packet.size() + 256);
  const size_t port_at = packet[12] == 0x08 ? 14 + 20 : 14 + 40;
  uint16_t port = 1024;
  int64_t total = 0;
  for (auto _ : state) {
    if (vary_port) {
      port = static_cast<uint16_t>(port == 65535 ? 1024 : port + 1);
      packet[port_at] = port >> 8;
      packet[port_at + 1] = port & 0xff;
    }
    const int64_t ns = run_once(prog_fd, packet, out, want);
    if (ns < 0) {
      state.SkipWithError("unexpected verdict");
      break;
    }
    total += ns;
    state.SetIterationTime(static_cast<double>(ns) * 1e-9);
  }
  state.counters["ns_per_packet"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kAvgIterations);
}

void BM_BareXdpPass(benchmark::State& state) {
  time_program(state, bpf_program__fd(env.pass->progs.ringlb_pass),
               tcp_packet(false, "10.1.0.5", "10.0.0.10", 40000, 0x02), XDP_PASS, false);
}

void BM_NonVipPass(benchmark::State& state) {
  time_program(state, env.program->xdp_fd(),
               tcp_packet(false, "10.1.0.5", "10.0.0.99", 40000, 0x10), XDP_PASS, false);
}

void BM_VipSynNewFlowV4(benchmark::State& state) {
  time_program(state, env.program->xdp_fd(),
               tcp_packet(false, "10.1.0.5", "10.0.0.10", 40000, 0x02), XDP_TX, true);
}

// The same SYN again (a retransmission): Maglev and a flow-table update of an existing
// key, no eviction. Set against BM_VipSynNewFlowV4 it shows what the LRU eviction costs.
void BM_VipSynSameFlowV4(benchmark::State& state) {
  time_program(state, env.program->xdp_fd(),
               tcp_packet(false, "10.1.0.7", "10.0.0.10", 40000, 0x02), XDP_TX, false);
}

// An ACK of a flow this balancer never saw start (ECMP moved it here): hash and Maglev,
// no flow-table insert. Set against the SYN rows it shows what the insert costs.
void BM_VipUnknownFlowV4(benchmark::State& state) {
  time_program(state, env.program->xdp_fd(),
               tcp_packet(false, "10.1.0.8", "10.0.0.10", 40000, 0x10), XDP_TX, true);
}

void BM_VipEstablishedFlowV4(benchmark::State& state) {
  Bytes out(512);
  // The SYN puts the flow in the table; the timed packets are its ACKs.
  run_once(env.program->xdp_fd(), tcp_packet(false, "10.1.0.6", "10.0.0.10", 40000, 0x02), out,
           XDP_TX);
  time_program(state, env.program->xdp_fd(),
               tcp_packet(false, "10.1.0.6", "10.0.0.10", 40000, 0x10), XDP_TX, false);
}

void BM_VipSynNewFlowV6(benchmark::State& state) {
  time_program(state, env.program->xdp_fd(), tcp_packet(true, "fd00:1::5", "fd00::10", 40000, 0x02),
               XDP_TX, true);
}

void BM_VipEstablishedFlowV6(benchmark::State& state) {
  Bytes out(512);
  run_once(env.program->xdp_fd(), tcp_packet(true, "fd00:1::6", "fd00::10", 40000, 0x02), out,
           XDP_TX);
  time_program(state, env.program->xdp_fd(), tcp_packet(true, "fd00:1::6", "fd00::10", 40000, 0x10),
               XDP_TX, false);
}

// --- Warm loop: repeat = N through the restoring wrapper (perf/xdp/restore.bpf.c) ---
//
// The rows above pay a syscall per packet, so the program runs with cold caches and the
// kernel's timer cost is in every figure. These rows run it kRepeat times back to back,
// as a busy NIC queue does: the wrapper restores the packet before each run and
// tail-calls the program. "wrapped bare XDP_PASS" is the wrapper's own cost plus the
// bare program's; the difference to it is the program's cost. Rows that give every run a
// new client subtract BM_Warm_BareXdpPassVaryFlow, the others BM_Warm_BareXdpPass.
// Every BPF_PROG_TEST_RUN call of an XDP program swaps the XDP dispatcher's program in
// and out, and each swap waits for an RCU grace period (about 18 ms here): 20,000 runs
// per call spent 0.8 ms running and 18 ms waiting, and each call started on cold caches.
constexpr uint32_t kRepeat = 200000;

// The restoring wrapper around `prog_fd` for `packet`, or nullptr. `flow_count` (a power
// of two, 0 for none) makes a varying wrapper cycle through that many flows.
ringlb_restore* open_wrapper(int prog_fd, const Bytes& packet, bool vary_flow,
                             uint32_t flow_count) {
  ringlb_restore* wrapper = ringlb_restore__open();
  if (wrapper == nullptr) {
    return nullptr;
  }
  const bool v4 = packet[12] == 0x08;
  wrapper->rodata->packet_len = static_cast<uint32_t>(packet.size());
  wrapper->rodata->port_offset = v4 ? 14 + 20 : 14 + 40;
  wrapper->rodata->addr_offset = v4 ? 14 + 12 : 14 + 8 + 12;
  wrapper->rodata->vary_flow = vary_flow ? 1 : 0;
  wrapper->rodata->flow_count = flow_count;
  const uint32_t zero = 0;
  const int target_fd = prog_fd;
  // struct original_packet: the first 16 bytes, the address word and the port word.
  std::vector<uint8_t> original(bpf_map__value_size(wrapper->maps.original), 0);
  std::memcpy(original.data(), packet.data(), 16);
  std::memcpy(original.data() + 16, packet.data() + wrapper->rodata->addr_offset, 4);
  std::memcpy(original.data() + 20, packet.data() + wrapper->rodata->port_offset, 4);
  if (ringlb_restore__load(wrapper) != 0 ||
      bpf_map_update_elem(bpf_map__fd(wrapper->maps.original), &zero, original.data(), 0) != 0 ||
      bpf_map_update_elem(bpf_map__fd(wrapper->maps.target), &zero, &target_fd, 0) != 0) {
    ringlb_restore__destroy(wrapper);
    return nullptr;
  }
  return wrapper;
}

// Runs `wrapper` `repeat` times once; returns the verdict of the last run, or -1. `frame`,
// when given, gets the last run's output frame.
int64_t run_wrapper(ringlb_restore* wrapper, const Bytes& packet, int repeat, uint32_t* duration,
                    Bytes* frame = nullptr) {
  Bytes out(packet.size() + 256);
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(packet.size());
  ctx.ingress_ifindex = static_cast<uint32_t>(env.ifindex);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(packet.size()),
              .data_size_out = static_cast<uint32_t>(out.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = repeat);
  if (bpf_prog_test_run_opts(bpf_program__fd(wrapper->progs.restore), &opts) != 0) {
    return -1;
  }
  if (duration != nullptr) {
    *duration = opts.duration;
  }
  if (frame != nullptr) {
    out.resize(opts.data_size_out);
    *frame = std::move(out);
  }
  return opts.retval;
}

// Whether the last run's `frame` still carries `packet` past its Ethernet header, after
// nothing or an outer IPv4 / IPv6 header: the wrapper restores only the first 16 bytes,
// which is right only while the programs change nothing further on. The words the wrapper
// varies are left out of the compare.
bool inner_packet_intact(const ringlb_restore* wrapper, const Bytes& packet, const Bytes& frame) {
  const size_t added = frame.size() - packet.size();
  if (frame.size() < packet.size() || (added != 0 && added != 20 && added != 40)) {
    return false;
  }
  const size_t addr = wrapper->rodata->addr_offset, port = wrapper->rodata->port_offset;
  for (size_t i = 14; i < packet.size(); ++i) {
    const bool varied = wrapper->rodata->vary_flow != 0 &&
                        ((i >= addr && i < addr + 4) || (i >= port && i < port + 4));
    if (!varied && frame[added + i] != packet[i]) {
      return false;
    }
  }
  return true;
}

void time_wrapped(benchmark::State& state, int prog_fd, const Bytes& packet, uint32_t want,
                  bool vary_flow, uint32_t flow_count = 0) {
  ringlb_restore* wrapper = open_wrapper(prog_fd, packet, vary_flow, flow_count);
  if (wrapper == nullptr) {
    state.SkipWithError("setting up the restoring wrapper failed");
    return;
  }
  double total = 0;
  Bytes frame;
  for (auto _ : state) {
    uint32_t duration = 0;
    if (run_wrapper(wrapper, packet, static_cast<int>(kRepeat), &duration, &frame) != want) {
      state.SkipWithError("unexpected verdict");
      break;
    }
    if (!inner_packet_intact(wrapper, packet, frame)) {
      state.SkipWithError("the packet changed past what the wrapper restores");
      break;
    }
    total += duration;
    state.SetIterationTime(static_cast<double>(duration) * kRepeat * 1e-9);
  }
  state.counters["ns_per_packet"] = benchmark::Counter(total, benchmark::Counter::kAvgIterations);
  ringlb_restore__destroy(wrapper);
}

const Bytes& v4_packet(uint8_t flags) {
  static const Bytes syn = tcp_packet(false, "10.1.0.5", "10.0.0.10", 40000, 0x02);
  static const Bytes ack = tcp_packet(false, "10.1.0.5", "10.0.0.10", 40000, 0x10);
  return flags == 0x02 ? syn : ack;
}

void BM_Warm_BareXdpPass(benchmark::State& state) {
  time_wrapped(state, bpf_program__fd(env.pass->progs.ringlb_pass), v4_packet(0x02), XDP_PASS,
               false);
}

// The baseline of the rows that vary the flow: the wrapper's per-run rewrite of the client
// is its own cost, not the program's.
void BM_Warm_BareXdpPassVaryFlow(benchmark::State& state) {
  time_wrapped(state, bpf_program__fd(env.pass->progs.ringlb_pass), v4_packet(0x02), XDP_PASS,
               true);
}

// Floors (perf/xdp/floor.bpf.c): the least a program can do for each target, with no
// lookup at all. Their distance to bare is what this machine charges for the work itself.
void BM_Warm_FloorParse(benchmark::State& state) {
  time_wrapped(state, bpf_program__fd(env.floor->progs.floor_parse),
               tcp_packet(false, "10.1.0.5", "10.0.0.99", 40000, 0x10), XDP_PASS, false);
}

void BM_Warm_FloorEncap(benchmark::State& state) {
  time_wrapped(state, bpf_program__fd(env.floor->progs.floor_encap), v4_packet(0x10), XDP_TX,
               false);
}

// A new client every run, as in the new-flow rows (subtract BM_Warm_BareXdpPassVaryFlow).
void BM_Warm_FloorInsert(benchmark::State& state) {
  time_wrapped(state, bpf_program__fd(env.floor->progs.floor_insert), v4_packet(0x02), XDP_TX,
               true);
}

// The same for IPv6 (a new client every run, as in BM_Warm_VipSynNewFlowV6).
void BM_Warm_FloorInsertV6(benchmark::State& state) {
  time_wrapped(state, bpf_program__fd(env.floor->progs.floor_insert_v6),
               tcp_packet(true, "fd00:1::5", "fd00::10", 40000, 0x02), XDP_TX, true);
}

// One established flow, put in the table by floor_insert first (backend 1).
void BM_Warm_FloorEstablished(benchmark::State& state) {
  const uint32_t backend_id = 1;
  const ringlb_backend backend{.addr = {htonl(0x0a020001), 0, 0, 0}, .family = RINGLB_FAMILY_V4};
  Bytes out(512);
  if (bpf_map_update_elem(bpf_map__fd(env.floor->maps.floor_backends), &backend_id, &backend, 0) !=
      0) {
    state.SkipWithError("setting the floor's backend failed");
    return;
  }
  run_once(bpf_program__fd(env.floor->progs.floor_insert), v4_packet(0x10), out, XDP_TX);
  time_wrapped(state, bpf_program__fd(env.floor->progs.floor_established), v4_packet(0x10), XDP_TX,
               false);
}

void BM_Warm_NonVipPass(benchmark::State& state) {
  time_wrapped(state, env.program->xdp_fd(),
               tcp_packet(false, "10.1.0.5", "10.0.0.99", 40000, 0x10), XDP_PASS, false);
}

void BM_Warm_VipEstablishedFlowV4(benchmark::State& state) {
  Bytes out(512);
  run_once(env.program->xdp_fd(), tcp_packet(false, "10.1.0.9", "10.0.0.10", 40001, 0x02), out,
           XDP_TX);
  time_wrapped(state, env.program->xdp_fd(),
               tcp_packet(false, "10.1.0.9", "10.0.0.10", 40001, 0x10), XDP_TX, false);
}

// Established flows of many clients: kManyFlows SYNs put them in the table, then every
// run is an ACK of the next one, round robin. Each packet finds its flow in a bucket that
// has left the cache since its last turn (1 MiB of one-line buckets; the floor's older
// layout touches 2 MiB of tag and slot lines), as on a balancer with that many active
// flows per CPU.
constexpr uint32_t kManyFlows = 16384;

// Sends kManyFlows SYNs of new flows through `prog_fd` (as the timed rows vary them):
// false when one was not forwarded.
bool fill_many_flows(int prog_fd) {
  ringlb_restore* prefill = open_wrapper(prog_fd, v4_packet(0x02), true, kManyFlows);
  const bool filled =
      prefill != nullptr &&
      run_wrapper(prefill, v4_packet(0x02), static_cast<int>(kManyFlows), nullptr) == XDP_TX;
  ringlb_restore__destroy(prefill);
  return filled;
}

void BM_Warm_VipEstablishedManyFlowsV4(benchmark::State& state) {
  if (!fill_many_flows(env.program->xdp_fd())) {
    state.SkipWithError("putting the flows in the table failed");
    return;
  }
  time_wrapped(state, env.program->xdp_fd(), v4_packet(0x10), XDP_TX, true, kManyFlows);
}

// The established floor with kManyFlows flows, put in by floor_insert, an ACK of the next
// one each run: the floor of BM_Warm_VipEstablishedManyFlowsV4, with the same cache misses.
void BM_Warm_FloorEstablishedManyFlows(benchmark::State& state) {
  const uint32_t backend_id = 1;
  const ringlb_backend backend{.addr = {htonl(0x0a020001), 0, 0, 0}, .family = RINGLB_FAMILY_V4};
  if (bpf_map_update_elem(bpf_map__fd(env.floor->maps.floor_backends), &backend_id, &backend, 0) !=
      0) {
    state.SkipWithError("setting the floor's backend failed");
    return;
  }
  if (!fill_many_flows(bpf_program__fd(env.floor->progs.floor_insert))) {
    state.SkipWithError("putting the flows in the floor's table failed");
    return;
  }
  time_wrapped(state, bpf_program__fd(env.floor->progs.floor_established), v4_packet(0x10), XDP_TX,
               true, kManyFlows);
}

// Every run a SYN from a new client and port: hash, VIP, Maglev, flow-table insert
// (evicting once the table is full).
void BM_Warm_VipSynNewFlowV4(benchmark::State& state) {
  time_wrapped(state, env.program->xdp_fd(), v4_packet(0x02), XDP_TX, true);
}

// The new-flow row with kSmallTableFlows flows per CPU (128 KiB of buckets, against 1 MiB
// at the default 65,536): the same work, less memory to miss in.
constexpr uint32_t kSmallTableFlows = 8192;

void BM_Warm_VipSynNewFlowV4SmallTable(benchmark::State& state) {
  time_wrapped(state, env.small_table->xdp_fd(), v4_packet(0x02), XDP_TX, true);
}

// Every run an ACK of a flow never seen (ECMP moved it here): hash, VIP, Maglev, no insert.
void BM_Warm_VipUnknownFlowV4(benchmark::State& state) {
  time_wrapped(state, env.program->xdp_fd(), v4_packet(0x10), XDP_TX, true);
}

void BM_Warm_VipEstablishedFlowV6(benchmark::State& state) {
  Bytes out(512);
  run_once(env.program->xdp_fd(), tcp_packet(true, "fd00:1::9", "fd00::10", 40001, 0x02), out,
           XDP_TX);
  time_wrapped(state, env.program->xdp_fd(), tcp_packet(true, "fd00:1::9", "fd00::10", 40001, 0x10),
               XDP_TX, false);
}

void BM_Warm_VipSynNewFlowV6(benchmark::State& state) {
  time_wrapped(state, env.program->xdp_fd(), tcp_packet(true, "fd00:1::5", "fd00::10", 40000, 0x02),
               XDP_TX, true);
}

BENCHMARK(BM_Warm_BareXdpPass)->UseManualTime();
BENCHMARK(BM_Warm_BareXdpPassVaryFlow)->UseManualTime();
BENCHMARK(BM_Warm_FloorParse)->UseManualTime();
BENCHMARK(BM_Warm_FloorEncap)->UseManualTime();
BENCHMARK(BM_Warm_FloorInsert)->UseManualTime();
BENCHMARK(BM_Warm_FloorInsertV6)->UseManualTime();
BENCHMARK(BM_Warm_FloorEstablished)->UseManualTime();
BENCHMARK(BM_Warm_NonVipPass)->UseManualTime();
BENCHMARK(BM_Warm_VipEstablishedFlowV4)->UseManualTime();
BENCHMARK(BM_Warm_VipEstablishedManyFlowsV4)->UseManualTime();
BENCHMARK(BM_Warm_FloorEstablishedManyFlows)->UseManualTime();
BENCHMARK(BM_Warm_VipSynNewFlowV4)->UseManualTime();
BENCHMARK(BM_Warm_VipSynNewFlowV4SmallTable)->UseManualTime();
BENCHMARK(BM_Warm_VipUnknownFlowV4)->UseManualTime();
BENCHMARK(BM_Warm_VipEstablishedFlowV6)->UseManualTime();
BENCHMARK(BM_Warm_VipSynNewFlowV6)->UseManualTime();

BENCHMARK(BM_BareXdpPass)->UseManualTime();
BENCHMARK(BM_NonVipPass)->UseManualTime();
BENCHMARK(BM_VipSynNewFlowV4)->UseManualTime();
BENCHMARK(BM_VipSynSameFlowV4)->UseManualTime();
BENCHMARK(BM_VipUnknownFlowV4)->UseManualTime();
BENCHMARK(BM_VipEstablishedFlowV4)->UseManualTime();
BENCHMARK(BM_VipSynNewFlowV6)->UseManualTime();
BENCHMARK(BM_VipEstablishedFlowV6)->UseManualTime();

// Loads the program with `options` into `into` and fills its maps from `config`; returns
// the error, or "".
std::string load_program(const ringlb::xdp::LoadOptions& options, const ringlb::Config& config,
                         std::optional<ringlb::xdp::XdpProgram>& into) {
  auto program = ringlb::xdp::XdpProgram::load(options);
  if (!program) {
    return program.error().message;
  }
  into.emplace(std::move(*program));
  if (auto applied = into->apply(config); !applied) {
    return applied.error().message;
  }
  return "";
}

std::string setup() {
  if (auto failed = ringlb::test::enter_xdp_lab(); !failed.empty()) {
    return failed;
  }
  env.ifindex = ringlb::test::lab_ifindex();
  auto config = ringlb::parse_config(kConfig, "bench.toml");
  if (!config) {
    return config.error().message;
  }
  auto options = ringlb::test::lab_load_options(*config);
  if (auto failed = load_program(options, *config, env.program); !failed.empty()) {
    return failed;
  }
  options.flow_entries = kSmallTableFlows;
  if (auto failed = load_program(options, *config, env.small_table); !failed.empty()) {
    return failed;
  }
  env.pass = ringlb_pass__open_and_load();
  if (env.pass == nullptr) {
    return std::string("loading the XDP_PASS baseline: ") + strerror(errno);
  }
  env.floor = ringlb_floor__open_and_load();
  if (env.floor == nullptr) {
    return std::string("loading the floor programs: ") + strerror(errno);
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (const std::string reason = setup(); !reason.empty()) {
    std::fprintf(stderr, "bench_xdp: skipped: %s\n", reason.c_str());
    return 0;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  ringlb_floor__destroy(env.floor);
  ringlb_pass__destroy(env.pass);
  return 0;
}
