// Test environment for BPF_PROG_TEST_RUN tests of the XDP program: a private network
// namespace (the test process unshares one, so everything in it disappears with the
// process, also when a test fails) with one veth pair whose neighbour entries are fixed,
// so bpf_fib_lookup answers deterministically:
//
//   lb0 (02:00:00:00:00:01, 10.99.0.1/24, fd00:99::1/64) <-> peer0 (02:00:00:00:00:02)
//   routes: 10.200.0.0/16 via 10.99.0.2, fd00:200::/64 via fd00:99::2; no default route
//
// The program is loaded without pinning and filled from kConfig.
#pragma once

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "lab.h"
#include "packet.h"
#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::test {

inline const Mac kLbMac{0x02, 0, 0, 0, 0, 0x01};
inline const Mac kPeerMac{0x02, 0, 0, 0, 0, 0x02};
inline const Mac kClientMac{0x02, 0, 0, 0, 0, 0x10};

inline constexpr const char* kConfig = R"(
[daemon]
workers = 2
hash_seed = "0f0e0d0c0b0a09080706050403020100"

[xdp]
interface = "lb0"

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
name = "dns"
listen = "10.0.0.10:53"
protocol = "udp"
mode = "forward"
[[vip.backend]]
name = "r1"
address = "10.200.0.4"

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
[[vip.backend]]
name = "b3"
address = "fd00:200::3"

[[vip]]
name = "empty"
listen = "10.0.0.11:80"
mode = "forward"
[[vip.backend]]
name = "x"
address = "10.200.0.9"
state = "down"

[[vip]]
name = "unrouted"
listen = "10.0.0.12:80"
mode = "forward"
[[vip.backend]]
name = "u"
address = "192.0.2.1"

[[vip]]
name = "noneigh"
listen = "10.0.0.13:80"
mode = "forward"
[[vip.backend]]
name = "n"
address = "10.99.0.3"

[[vip]]
name = "app"
listen = "10.0.0.20:8080"
[[vip.backend]]
name = "p"
address = "127.0.0.1:9000"
)";

// Runs a shell command; returns its exit status.
inline int sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str());
}

struct RunResult {
  int err = 0;
  uint32_t retval = 0;
  Bytes out;
};

class XdpEnv {
 public:
  // Sets up the namespace and the program once per process. Returns a reason to skip,
  // or an empty string.
  static std::string setup() {
    static std::string reason = [] { return do_setup(); }();
    return reason;
  }

  static xdp::XdpProgram& program() { return *instance().program; }
  static const Config& config() { return *instance().config; }
  static int ifindex() { return instance().ifindex; }
  static const VipSpec& vip(const std::string& name) {
    for (const auto& v : config().vips) {
      if (v.name == name) {
        return v;
      }
    }
    throw std::runtime_error("no vip " + name);
  }

  static RunResult run(const Bytes& packet) { return run_on(program().xdp_fd(), packet); }

  static RunResult run_on(int prog_fd, const Bytes& packet) {
    RunResult r;
    r.out.resize(packet.size() + 512);
    xdp_md ctx{};
    ctx.data_end = static_cast<uint32_t>(packet.size());
    ctx.ingress_ifindex = static_cast<uint32_t>(ifindex());
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(), .data_out = r.out.data(),
                .data_size_in = static_cast<uint32_t>(packet.size()),
                .data_size_out = static_cast<uint32_t>(r.out.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    r.err = bpf_prog_test_run_opts(prog_fd, &opts) == 0 ? 0 : errno;
    r.retval = opts.retval;
    r.out.resize(opts.data_size_out);
    return r;
  }

  static uint64_t verdict_count(uint32_t verdict) {
    auto counters = xdp::read_counters(program().map_fd("verdict_stats"), RINGLB_V_MAX);
    return counters ? (*counters)[verdict].packets : ~0ull;
  }

  // Reloads the maps from another config text (same table size).
  static void apply(const std::string& text) {
    auto parsed = parse_config(text, "test.toml");
    ASSERT_TRUE(parsed) << parsed.error().message;
    instance().config = std::move(*parsed);
    auto applied = program().apply(*instance().config);
    ASSERT_TRUE(applied) << applied.error().message;
  }

 private:
  struct State {
    std::optional<Config> config;
    std::optional<xdp::XdpProgram> program;
    int ifindex = 0;
  };
  static State& instance() {
    static State state;
    return state;
  }

  static std::string do_setup() {
    if (auto failed = enter_xdp_lab(); !failed.empty()) {
      return failed;
    }
    // The flow table is per CPU: runs of one flow must see one CPU's table, as RSS keeps
    // a NIC's flow on one CPU.
    cpu_set_t cpu0;
    CPU_ZERO(&cpu0);
    CPU_SET(0, &cpu0);
    if (sched_setaffinity(0, sizeof(cpu0), &cpu0) != 0) {
      return std::string("sched_setaffinity(CPU 0): ") + strerror(errno);
    }
    auto& s = instance();
    s.ifindex = lab_ifindex();
    auto parsed = parse_config(kConfig, "test.toml");
    if (!parsed) {
      return "bad test config: " + parsed.error().message;
    }
    s.config = std::move(*parsed);
    auto options = lab_load_options(*s.config);
    options.steer_workers = 2;
    auto program = xdp::XdpProgram::load(options);
    if (!program) {
      ADD_FAILURE() << program.error().message;
      return "load failed";
    }
    s.program.emplace(std::move(*program));
    if (auto applied = s.program->apply(*s.config); !applied) {
      ADD_FAILURE() << applied.error().message;
      return "apply failed";
    }
    return "";
  }
};

}  // namespace ringlb::test
