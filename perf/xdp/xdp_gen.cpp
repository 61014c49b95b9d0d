// Bounded packet generator and XDP helper for perf/xdp/pps.sh.
//
//   xdp_gen send DEV --src-mac M --dst-mac M --src IP --dst IP --dport P --count N
//                    [--flows F] [--new-flows] [--syn] [--payload B]
//       sends exactly N frames out of DEV with BPF_PROG_TEST_RUN in live-frames mode
//       (gen.bpf.c), then prints "sent N frames in S s: R pps".
//   xdp_gen hold DEV PROGRAM SECONDS
//       attaches gen.bpf.c's PROGRAM (drop | bounce) to DEV natively, holds it for at most
//       SECONDS (or until SIGTERM/SIGINT), detaches and exits. The pps script runs it in
//       the background for the generator's receiving side and for the bare-XDP_TX baseline.
//
// Needs root. Everything it attaches it detaches, also when stopped by a signal.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "packet.h"
#include "ringlb_gen.skel.h"

namespace {

using ringlb::test::Bytes;
using ringlb::test::Mac;
using ringlb::test::Packet;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "xdp_gen: %s\n", message.c_str());
  std::exit(1);
}

Mac parse_mac(const char* text) {
  Mac mac{};
  unsigned v[6];
  if (std::sscanf(text, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) {
    die(std::string("bad MAC address: ") + text);
  }
  for (int i = 0; i < 6; ++i) {
    mac[i] = static_cast<uint8_t>(v[i]);
  }
  return mac;
}

unsigned long parse_number(const char* text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') {
    die(std::string("bad ") + what + ": " + text);
  }
  return v;
}

int ifindex_of(const char* dev) {
  const unsigned index = if_nametoindex(dev);
  if (index == 0) {
    die(std::string("no such device: ") + dev);
  }
  return static_cast<int>(index);
}

struct SendOptions {
  const char* dev = nullptr;
  Mac src_mac{}, dst_mac{};
  const char* src = nullptr;
  const char* dst = nullptr;
  uint16_t dport = 80;
  uint32_t count = 0;
  uint32_t flows = 1;
  bool new_flows = false;
  bool syn = false;
  size_t payload = 18;
};

int send(const SendOptions& o) {
  if (o.count == 0 || o.count > 1u << 30 || o.src == nullptr || o.dst == nullptr) {
    die("send needs --count (1..2^30), --src and --dst");
  }
  if (o.flows == 0 || (o.flows & (o.flows - 1)) != 0 || o.flows > 65536) {
    die("--flows must be a power of two up to 65536");
  }
  const int ifindex = ifindex_of(o.dev);
  const Bytes frame = Packet()
                          .Eth(o.src_mac, o.dst_mac)
                          .IPv4(o.src, o.dst)
                          .TCP(1024, o.dport, o.syn ? ringlb::test::kSyn : ringlb::test::kAck)
                          .payload(o.payload)
                          .build();
  ringlb_gen* skel = ringlb_gen__open();
  if (skel == nullptr) {
    die("opening gen.bpf.o failed");
  }
  skel->rodata->flows = o.flows;
  skel->rodata->new_flows = o.new_flows ? 1 : 0;
  skel->rodata->tcp_flags = o.syn ? ringlb::test::kSyn : ringlb::test::kAck;
  if (frame.size() < sizeof(skel->rodata->header)) {
    die("the frame is shorter than the header template (raise --payload)");
  }
  std::memcpy(skel->rodata->header, frame.data(), sizeof(skel->rodata->header));
  if (ringlb_gen__load(skel) != 0) {
    die("loading gen.bpf.o failed");
  }
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(frame.size());
  ctx.ingress_ifindex = static_cast<uint32_t>(ifindex);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(o.count),
              .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
  const auto start = std::chrono::steady_clock::now();
  const int rc = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.gen), &opts);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int err = errno;
  ringlb_gen__destroy(skel);
  if (rc != 0 && (err == EPERM || err == EOPNOTSUPP)) {
    // Some kernels (seen on 6.18.44-fc) refuse the mode to root as well: a missing
    // feature, named, and exit 77 for the callers that skip on it.
    std::fprintf(stderr,
                 "xdp_gen: skipped: the kernel refuses BPF_PROG_TEST_RUN in live-frames mode "
                 "(BPF_F_TEST_XDP_LIVE_FRAMES): %s\n",
                 std::strerror(err));
    std::exit(77);
  }
  if (rc != 0) {
    die(std::string("BPF_PROG_TEST_RUN (live frames) failed: ") + std::strerror(err));
  }
  std::printf("sent %u frames in %.3f s: %.0f pps\n", o.count, seconds, o.count / seconds);
  return 0;
}

volatile sig_atomic_t stop = 0;
void on_signal(int) {
  stop = 1;
}

int hold(const char* dev, std::string_view program, unsigned long seconds) {
  const int ifindex = ifindex_of(dev);
  ringlb_gen* skel = ringlb_gen__open_and_load();
  if (skel == nullptr) {
    die("loading gen.bpf.o failed");
  }
  bpf_program* prog = program == "drop"     ? skel->progs.drop
                      : program == "bounce" ? skel->progs.bounce
                                            : nullptr;
  if (prog == nullptr) {
    ringlb_gen__destroy(skel);
    die("unknown program (drop | bounce): " + std::string(program));
  }
  if (bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, nullptr) != 0) {
    const int err = errno;
    ringlb_gen__destroy(skel);
    die(std::string("attaching to ") + dev + ": " + std::strerror(err));
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  // A parent may start it with these blocked (the mask survives exec): unblock them, or
  // the script that holds it could not stop it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_UNBLOCK, &stop_signals, nullptr);
  for (unsigned long i = 0; i < seconds * 10 && !stop; ++i) {
    usleep(100'000);
  }
  bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
  ringlb_gen__destroy(skel);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::string_view(argv[1]) == "hold") {
    return hold(argv[2], argv[3], parse_number(argv[4], "seconds"));
  }
  if (argc < 3 || std::string_view(argv[1]) != "send") {
    std::fprintf(stderr,
                 "usage: xdp_gen send DEV --src-mac M --dst-mac M --src IP --dst IP [--dport P]\n"
                 "                    --count N [--flows F] [--new-flows] [--syn] [--payload B]\n"
                 "       xdp_gen hold DEV drop|bounce SECONDS\n");
    return 2;
  }
  SendOptions o;
  o.dev = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        die(std::string(arg) + " needs a value");
      }
      return argv[++i];
    };
    if (arg == "--src-mac") {
      o.src_mac = parse_mac(value());
    } else if (arg == "--dst-mac") {
      o.dst_mac = parse_mac(value());
    } else if (arg == "--src") {
      o.src = value();
    } else if (arg == "--dst") {
      o.dst = value();
    } else if (arg == "--dport") {
      o.dport = static_cast<uint16_t>(parse_number(value(), "port"));
    } else if (arg == "--count") {
      o.count = static_cast<uint32_t>(parse_number(value(), "count"));
    } else if (arg == "--flows") {
      o.flows = static_cast<uint32_t>(parse_number(value(), "flows"));
    } else if (arg == "--payload") {
      o.payload = parse_number(value(), "payload");
    } else if (arg == "--new-flows") {
      o.new_flows = true;
    } else if (arg == "--syn") {
      o.syn = true;
    } else {
      die("unknown argument: " + std::string(arg));
    }
  }
  return send(o);
}
