// Fuzz target: the XDP program's packet parser, run on the real program through
// BPF_PROG_TEST_RUN in the XDP test lab (a private network namespace, tests/xdp/lab.h).
// An input is one Ethernet frame. Every frame must get a defined XDP verdict, and the
// verdict counters must count it exactly once, under a verdict of the same action.
// Needs root: without it the target exits 77 (ctest's skip code), saying why.
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

#include "../xdp/xdp_env.h"
#include "fuzz_check.h"
#include "ringlb/abi/xdp_abi.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb {
namespace {

// libFuzzer sees coverage of this process only, not of the BPF program. These extra
// counters (a section libFuzzer reads after each run) give it the program's side: which
// verdict, and how the frame's length changed (encapsulated, shrunk, a reply), so inputs
// reaching a new verdict or rewrite are kept and mutated further.
constexpr size_t kLengthClasses = 6;
__attribute__((used, section("__libfuzzer_extra_counters")))
uint8_t bpf_features[RINGLB_V_MAX * kLengthClasses];

size_t length_class(size_t in, size_t out) {
  if (out == in) {
    return 0;
  }
  if (out == in + 20) {
    return 1;  // IPIP
  }
  if (out == in + 40) {
    return 2;  // IP6IP6
  }
  if (out < in) {
    return 3;
  }
  return out < in + 64 ? 4 : 5;
}

std::vector<uint64_t> verdict_packets() {
  auto counters = xdp::read_counters(test::XdpEnv::program().map_fd("verdict_stats"), RINGLB_V_MAX);
  FUZZ_CHECK(counters.ok(), "cannot read verdict_stats: %s", counters.error().message.c_str());
  std::vector<uint64_t> packets;
  for (const auto& c : *counters) {
    packets.push_back(c.packets);
  }
  return packets;
}

// The XDP action a verdict counter stands for, from its name ("tx_forward": XDP_TX).
uint32_t action_of(uint32_t verdict) {
  const std::string_view name = xdp::verdict_name(verdict);
  if (name.starts_with("pass")) {
    return XDP_PASS;
  }
  if (name.starts_with("tx")) {
    return XDP_TX;
  }
  if (name.starts_with("redirect")) {
    return XDP_REDIRECT;
  }
  if (name.starts_with("drop")) {
    return XDP_DROP;
  }
  return ~0u;
}

}  // namespace
}  // namespace ringlb

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The XDP tests' lab and config (tests/xdp/xdp_env.h): forward VIPs over IPv4 and
  // IPv6, TCP and UDP, one without backends, unrouted ones, and a steered proxy VIP.
  if (const std::string reason = ringlb::test::XdpEnv::setup(); !reason.empty()) {
    std::fprintf(stderr, "packet_fuzz: skipped: %s\n", reason.c_str());
    std::exit(77);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringlb;
  using test::Bytes;
  using test::XdpEnv;
  // The kernel refuses test runs with less than an Ethernet header, and frames above one
  // page; neither reaches the parser.
  if (size < 14 || size > 3000) {
    return 0;
  }
  const auto before = verdict_packets();
  const auto run = XdpEnv::run(Bytes(data, data + size));
  FUZZ_CHECK(run.err == 0, "test run failed: %s (size %zu)", std::strerror(run.err), size);
  const uint32_t verdict = run.retval;
  FUZZ_CHECK(
      verdict == XDP_PASS || verdict == XDP_TX || verdict == XDP_DROP || verdict == XDP_REDIRECT,
      "undefined verdict %u", verdict);
  // A frame the program lets through reaches the kernel as it came.
  FUZZ_CHECK(verdict != XDP_PASS ||
                 (run.out.size() == size && std::equal(run.out.begin(), run.out.end(), data)),
             "XDP_PASS changed the frame (size %zu -> %zu)", size, run.out.size());
  const auto after = verdict_packets();
  uint64_t counted = 0;
  for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
    const uint64_t delta = after[v] - before[v];
    counted += delta;
    FUZZ_CHECK(delta == 0 || action_of(v) == verdict, "returned %u but counted as %.*s", verdict,
               static_cast<int>(xdp::verdict_name(v).size()), xdp::verdict_name(v).data());
    if (delta != 0) {
      bpf_features[v * kLengthClasses + length_class(size, run.out.size())] = 1;
    }
  }
  FUZZ_CHECK(counted == 1, "one packet counted %llu times",
             static_cast<unsigned long long>(counted));
  return 0;
}
