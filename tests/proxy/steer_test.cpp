// Steer mode in ringlbd: with [xdp] steer on, every connection from a client address is
// accepted by the worker that owns client_slot(hash, workers), the worker the XDP program
// steers that client's packets to. Runs on loopback: the reuseport half needs no NIC.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "harness.h"
#include "ringlb/config/config.h"
#include "ringlb/model/client_hash.h"

namespace ringlb::test {
namespace {

TEST(Steer, EachClientIsAcceptedByTheWorkerOwningItsHash) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "loading the sk_reuseport program needs root (CAP_BPF)";
  }
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  const std::string seed = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  const std::string config_text = proxy_config(
      port, {&a}, "", "workers = 2\nhash_seed = \"" + seed + "\"\n[xdp]\ninterface = \"lo\"\n");
  Ringlbd lb(config_text);
  ASSERT_NE(lb.log().find("steered by client hash"), std::string::npos) << lb.log();
  const auto key = parse_hash_seed(seed);
  ASSERT_TRUE(key);
  int on_worker[2] = {0, 0};
  for (int host = 10; host < 30; ++host) {
    const std::string source = "127.0.0." + std::to_string(host);
    in_addr addr;
    inet_pton(AF_INET, source.c_str(), &addr);
    const uint64_t owner = client_slot(*key, IpAddress::v4(addr), 2);
    const uint64_t before[2] = {lb.stat("worker.0.accepted"), lb.stat("worker.1.accepted")};
    for (int i = 0; i < 4; ++i) {
      Conn conn = Conn::open("127.0.0.1", port, 3000, source);
      ASSERT_TRUE(conn.ok());
      ASSERT_TRUE(conn.send_all("x"));
      ASSERT_EQ(conn.read_exact(1).value_or("?"), "x");
    }
    const uint64_t after[2] = {lb.stat("worker.0.accepted"), lb.stat("worker.1.accepted")};
    EXPECT_EQ(after[owner] - before[owner], 4u) << source << " owned by worker " << owner;
    EXPECT_EQ(after[1 - owner] - before[1 - owner], 0u) << source;
    ++on_worker[owner];
  }
  // Twenty addresses: both workers own some.
  EXPECT_GT(on_worker[0], 0);
  EXPECT_GT(on_worker[1], 0);
}

}  // namespace
}  // namespace ringlb::test
