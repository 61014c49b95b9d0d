// The BPF build path: the skeleton generated at build time loads, and the program runs
// under BPF_PROG_TEST_RUN (a packet that is not for a VIP passes). Needs root (CAP_BPF); skips with
// the reason otherwise.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <unistd.h>

#include <memory>

#include "ringlb_xdp.skel.h"

namespace {

struct SkeletonDeleter {
  void operator()(ringlb_xdp* skel) const { ringlb_xdp__destroy(skel); }
};
using Skeleton = std::unique_ptr<ringlb_xdp, SkeletonDeleter>;

TEST(BpfBuild, SkeletonLoadsAndPassesAPacket) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "loading BPF programs needs root (CAP_BPF, CAP_NET_ADMIN)";
  }
  Skeleton skel(ringlb_xdp__open());
  ASSERT_NE(skel, nullptr) << "ringlb_xdp__open failed: " << strerror(errno);
  // No pinning here: the maps declare pinning by name, which would need a bpffs.
  bpf_map* map;
  bpf_object__for_each_map(map, skel->obj) {
    bpf_map__set_pin_path(map, nullptr);
  }
  ASSERT_EQ(ringlb_xdp__load(skel.get()), 0) << "ringlb_xdp__load failed: " << strerror(errno);

  unsigned char packet[64] = {};
  packet[12] = ETH_P_IP >> 8;
  packet[13] = ETH_P_IP & 0xff;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
              .repeat = 1);
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.ringlb_xdp), &opts), 0)
      << strerror(errno);
  EXPECT_EQ(opts.retval, static_cast<__u32>(XDP_PASS)) << "retval";
}

}  // namespace
