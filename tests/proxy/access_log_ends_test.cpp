// The connection log's end reasons that take a live change or a shortage to cause: a
// VIP removed by a reload (`vip_removed`), a client refused at max_connections
// (`overload`), and a connection that ringlbd cannot go on with because descriptors ran
// out between accept and its first byte (`local_error`). Each record names the VIP, the
// client and how the peers were closed.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "access_log_helpers.h"
#include "harness.h"

namespace ringlb::test {
namespace {

std::string vip(const std::string& name, uint16_t port, const std::string& backend) {
  return "[[vip]]\nname = \"" + name + "\"\nlisten = \"127.0.0.1:" + std::to_string(port) +
         "\"\n[[vip.backend]]\nname = \"b-" + name + "\"\naddress = \"" + backend + "\"\n";
}

const json* find_end(const std::vector<json>& lines, const std::string& end) {
  for (const auto& line : lines) {
    if (line.contains("end") && line["end"] == end) {
      return &line;
    }
  }
  return nullptr;
}

TEST(AccessLogEnds, AVipRemovedByAReloadAndAClientRefusedAtMaxConnectionsAreNamed) {
  TempDir dir;
  Backend a("a", BackendMode::echo);
  const uint16_t gone_port = free_port();
  const uint16_t kept_port = free_port();
  const std::string daemon =
      "[daemon]\nworkers = 1\nmax_connections = 1\ndrain_timeout_ms = 300\n" +
      log_settings(dir.file("access.log"));
  Ringlbd lb(daemon + vip("gone", gone_port, a.address()) + vip("kept", kept_port, a.address()));
  Conn held = Conn::open("127.0.0.1", gone_port);
  ASSERT_TRUE(held.send_all("h"));
  ASSERT_EQ(held.read_exact(1), "h");
  // The worker is at max_connections: the next client is reset at once, and logged.
  // (The reset may come before the handshake is seen through: its source address names
  // it in the log.)
  Conn refused = Conn::open("127.0.0.1", kept_port, 3000, "127.0.0.9");
  char byte;
  EXPECT_LE(refused.ok() ? refused.read_some(&byte, 1, 3000) : 0, 0);
  // A reload removes the held connection's VIP: drain_timeout_ms later it is reset.
  lb.write_config(daemon + vip("kept", kept_port, a.address()));
  lb.signal(SIGHUP);
  EXPECT_EQ(held.read_some(&byte, 1, 5000), -ECONNRESET);
  const auto lines = wait_lines(dir.file("access.log"), 2);
  ASSERT_EQ(lines.size(), 2u) << testing::PrintToString(lines);

  const json* overload = find_end(lines, "overload");
  ASSERT_NE(overload, nullptr) << testing::PrintToString(lines);
  EXPECT_EQ((*overload)["vip"], "kept");
  EXPECT_EQ((*overload)["client"].get<std::string>().rfind("127.0.0.9:", 0), 0u);
  EXPECT_EQ((*overload)["close"], "reset");
  EXPECT_TRUE((*overload)["backend"].is_null());
  EXPECT_EQ((*overload)["connect_us"], -1);
  EXPECT_EQ((*overload)["bytes_client_to_backend"], 0);

  const json* removed = find_end(lines, "vip_removed");
  ASSERT_NE(removed, nullptr) << testing::PrintToString(lines);
  EXPECT_EQ((*removed)["vip"], "gone");
  EXPECT_EQ((*removed)["backend"], "b-gone");
  EXPECT_EQ((*removed)["close"], "reset");
  EXPECT_EQ((*removed)["bytes_client_to_backend"], 1);
  EXPECT_EQ((*removed)["bytes_backend_to_client"], 1);
  EXPECT_GE((*removed)["duration_us"].get<int64_t>(), 300'000);
}

// In splice mode a connection takes two pipes once its backend answers. With the
// descriptor limit reached between the accept (and the backend's socket) and those
// pipes, the connection cannot go on: both peers are reset and the log says
// local_error. Where exactly the limit falls depends on the daemon's own descriptors,
// so a few limits are tried, each with a fresh daemon, until one falls there.
TEST(AccessLogEnds, DescriptorsRunningOutBeforeThePipesIsALocalError) {
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  TempDir dir;
  // The harness passes RINGLBD_PUMP's mode itself (the splice. run of this suite).
  const char* pump = std::getenv("RINGLBD_PUMP");
  const bool harness_splices = pump != nullptr && std::string(pump) == "splice";
  const std::vector<std::string> splice =
      harness_splices ? std::vector<std::string>{} : std::vector<std::string>{"--pump", "splice"};
  const json* found = nullptr;
  std::vector<json> lines;
  for (int limit = 64; limit < 72 && found == nullptr; ++limit) {
    const std::string log = dir.file("access-" + std::to_string(limit) + ".log");
    Ringlbd lb(proxy_config(port, {&a}, "", "workers = 1\n" + log_settings(log)), splice, limit);
    std::vector<Conn> held;
    while (held.size() < 20) {
      Conn conn = Conn::open("127.0.0.1", port, 1000);
      const bool served =
          conn.ok() && conn.send_all("p", 1000) && conn.read_exact(1, 1000).value_or("") == "p";
      if (!served) {
        break;
      }
      held.push_back(std::move(conn));
    }
    lines = wait_lines(log, 1);
    found = find_end(lines, "local_error");
    if (found != nullptr) {
      EXPECT_EQ((*found)["vip"], "test");
      EXPECT_EQ((*found)["backend"], "a");
      EXPECT_EQ((*found)["close"], "reset");
      EXPECT_GE((*found)["connect_us"].get<int64_t>(), 0) << "it failed after connecting";
    }
    held.clear();
  }
  EXPECT_NE(found, nullptr) << "no limit from 64 to 71 ended a connection with local_error; "
                               "last log: "
                            << testing::PrintToString(lines);
}

}  // namespace
}  // namespace ringlb::test
