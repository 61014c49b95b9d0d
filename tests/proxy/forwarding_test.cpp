// Byte-exact forwarding through ringlbd: concurrency, sizes, half-close, IPv6, PROXY v2.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"

namespace ringlb::test {
namespace {

class Forwarding : public testing::Test {
 protected:
  void SetUp() override { raise_fd_limit(); }
};

// 1000 connections at once, each sending its own byte stream and checking the echo:
// 990 of 1 byte to 256 KiB, and one each of 128 KiB ... 64 MiB.
TEST_F(Forwarding, ThousandConcurrentConnectionsAreByteExactUpTo64MiB) {
  Backend a("a", BackendMode::echo), b("b", BackendMode::echo), c("c", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a, &b, &c}));
  // Count from here (nothing else touched the daemon, but deltas say what is meant).
  const uint64_t accepted_before = lb.worker_total("accepted");
  const uint64_t backend_before = a.connections() + b.connections() + c.connections();
  std::vector<uint64_t> sizes;
  uint64_t x = 12345;
  for (int i = 0; i < 990; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const int bits = static_cast<int>((x >> 33) % 19);  // log-uniform 1 B .. 256 KiB
    sizes.push_back(1 + ((x >> 8) % (uint64_t{1} << bits)));
  }
  for (int shift = 17; shift <= 26; ++shift) {
    sizes.push_back(uint64_t{1} << shift);
  }
  uint64_t total = 0;
  for (auto s : sizes) {
    total += s;
  }
  const EchoResult result = run_echo_clients("127.0.0.1", port, sizes, 1000, 120000);
  EXPECT_EQ(result.failed, 0u) << result.first_error;
  EXPECT_EQ(result.completed, sizes.size());
  EXPECT_EQ(result.bytes, total);
  EXPECT_EQ(lb.worker_total("bytes_in"), total);
  EXPECT_EQ(lb.worker_total("bytes_out"), total);
  EXPECT_EQ(lb.worker_total("accepted") - accepted_before, sizes.size());
  EXPECT_EQ(lb.worker_total("active"), 0u);
  EXPECT_EQ(lb.worker_total("resets"), 0u);
  EXPECT_EQ(a.connections() + b.connections() + c.connections() - backend_before, sizes.size());
}

TEST_F(Forwarding, HalfCloseStillDeliversTheReply) {
  Backend a("a", BackendMode::reply_after_eof);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a}));
  Conn conn = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(conn.send_all(std::string(100000, 'x')));
  conn.shutdown_write();
  auto reply = conn.read_to_eof();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, "a:100000");
}

TEST_F(Forwarding, BytesSentBeforeTheBackendConnectsAreForwarded) {
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a}));
  for (int i = 0; i < 50; ++i) {
    Conn conn = Conn::open("127.0.0.1", port);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(conn.send_all("hello " + std::to_string(i)));
    conn.shutdown_write();
    EXPECT_EQ(conn.read_to_eof().value_or("?"), "hello " + std::to_string(i));
  }
}

TEST_F(Forwarding, Ipv6ListenerAndBackend) {
  Backend a("a", BackendMode::echo, /*v6=*/true);
  const uint16_t port = free_port(true);
  const std::string config =
      "[daemon]\nworkers = 1\n[[vip]]\nname = \"v6\"\nlisten = \"[::1]:" + std::to_string(port) +
      "\"\n[[vip.backend]]\nname = \"a\"\naddress = \"" + a.address() + "\"\n";
  Ringlbd lb(config);
  Conn conn = Conn::open("::1", port);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(conn.send_all("over ipv6"));
  conn.shutdown_write();
  EXPECT_EQ(conn.read_to_eof().value_or("?"), "over ipv6");
}

TEST_F(Forwarding, ProxyProtocolV2TellsTheBackendTheClientAddress) {
  Backend a("a", BackendMode::proxy_v2);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a}, "send_proxy_v2 = true\n"));
  Conn conn = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(conn.ok());
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ::getsockname(conn.fd(), reinterpret_cast<sockaddr*>(&local), &len);
  ASSERT_TRUE(conn.send_all("payload"));
  conn.shutdown_write();
  EXPECT_EQ(conn.read_to_eof().value_or("?"),
            "source 127.0.0.1 " + std::to_string(ntohs(local.sin_port)) + "\npayload");
}

}  // namespace
}  // namespace ringlb::test
