// Live tuning through the mounted control filesystem while clients run: weight change,
// policy switch, drain, add and remove a backend. Zero failed requests; shares follow
// each change from the first connection after the write returns; counters agree with
// what the clients did.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "../proxy/harness.h"

namespace ringlb::test {
namespace {

using namespace std::chrono_literals;

// Writes `value` like `echo value > path`; returns 0 or the errno.
int write_file(const std::string& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
  if (fd < 0) {
    return errno;
  }
  const std::string text = value + "\n";
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int error = n < 0 ? errno : 0;
  ::close(fd);
  return error;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::string value;
  std::getline(in, value);
  return value;
}

class LiveTuning : public testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
      GTEST_SKIP() << "the control filesystem needs root and /dev/fuse";
    }
    raise_fd_limit();
  }

  // Where `n` sequential new connections land.
  static std::map<std::string, int> sample(uint16_t port, int n) {
    std::map<std::string, int> counts;
    for (int i = 0; i < n; ++i) {
      Conn conn = Conn::open("127.0.0.1", port);
      auto name = conn.ok() ? conn.read_exact(2, 3000) : std::nullopt;
      ++counts[name ? name->substr(0, 1) : "<failed>"];
    }
    return counts;
  }
};

TEST_F(LiveTuning, EveryChangeAppliesUnderLoadWithoutAFailedRequest) {
  Backend a("a", BackendMode::name), b("b", BackendMode::name), c("c", BackendMode::name);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a, &b, &c}, "policy = \"weighted\"\n", "", {3, 1, 1}));
  const std::string vip = lb.control_dir() + "/vips/test";
  ASSERT_EQ(read_file(vip + "/policy"), "weighted") << lb.log();

  // Background clients for the whole test: every request must succeed.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> requests{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&] {
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (!stop && std::chrono::steady_clock::now() < deadline) {
        Conn conn = Conn::open("127.0.0.1", port);
        auto name = conn.ok() ? conn.read_exact(2, 3000) : std::nullopt;
        if (!name || (*name)[1] != '\n') {
          ++failures;
        }
        ++requests;
      }
    });
  }

  // A connection to b established before b is drained must keep working.
  Conn held;
  for (int i = 0; i < 50 && !held.ok(); ++i) {
    Conn conn = Conn::open("127.0.0.1", port);
    if (conn.read_exact(2).value_or("") == "b\n") {
      held = std::move(conn);
    }
  }
  ASSERT_TRUE(held.ok());

  // 1. Weight: c to 0. Not one connection lands on c after the write returns.
  ASSERT_EQ(write_file(vip + "/backends/c/weight", "0"), 0);
  auto counts = sample(port, 200);
  EXPECT_EQ(counts["c"], 0);
  EXPECT_NEAR(counts["a"] / 200.0, 0.75, 0.08);

  // 2. Policy: weighted -> round_robin, weights stop mattering (c, weight 0, stays out).
  // The background clients take turns from the same per-worker cursors as the sample, so
  // the sample's share of a wanders around 1/2; 0.15 still tells it from weighted's 3/4.
  ASSERT_EQ(write_file(vip + "/policy", "round_robin"), 0);
  counts = sample(port, 200);
  EXPECT_NEAR(counts["a"] / 200.0, 0.5, 0.15);
  EXPECT_EQ(counts["c"], 0);

  // 3. Drain b: no new connections, the established one keeps working.
  ASSERT_EQ(write_file(vip + "/backends/b/state", "drain"), 0);
  counts = sample(port, 100);
  EXPECT_EQ(counts["a"], 100);
  ASSERT_TRUE(held.send_all("still"));
  EXPECT_EQ(held.read_exact(5).value_or("?"), "still");

  // 4. Add d: mkdir, then its address brings it into the pool.
  Backend d("d", BackendMode::name);
  ASSERT_EQ(::mkdir((vip + "/backends/d").c_str(), 0700), 0) << strerror(errno);
  ASSERT_EQ(write_file(vip + "/backends/d/address", d.address()), 0);
  counts = sample(port, 200);
  EXPECT_NEAR(counts["d"] / 200.0, 0.5, 0.15);  // round_robin beside the load, as in 2.

  // 5. Remove a: rmdir drains it (the sampled connections are closed) and removes it.
  ASSERT_EQ(::rmdir((vip + "/backends/a").c_str()), 0) << strerror(errno);
  counts = sample(port, 100);
  EXPECT_EQ(counts["d"], 100);
  EXPECT_NE(::access((vip + "/backends/a").c_str(), F_OK), 0);

  stop = true;
  for (auto& t : load) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0) << "of " << requests.load() << " requests";
  EXPECT_GT(requests.load(), 200);

  // Counters: every connection the backends saw was counted on the backend's directory.
  held = Conn{};
  std::this_thread::sleep_for(100ms);
  for (const auto* backend : {&b, &c, &d}) {
    EXPECT_EQ(std::stoull(read_file(vip + "/backends/" + backend->name() + "/connections")),
              backend->connections())
        << backend->name();
  }
  EXPECT_EQ(read_file(vip + "/backends/d/active"), "0");
}

TEST_F(LiveTuning, ShutdownResetsTheBackendsConnectionsOnly) {
  Backend a("a", BackendMode::name), b("b", BackendMode::name);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a, &b}, "policy = \"round_robin\"\n", "workers = 1\n"));
  Conn one = Conn::open("127.0.0.1", port);
  Conn two = Conn::open("127.0.0.1", port);
  const std::string first = one.read_exact(2).value_or("?");
  const std::string second = two.read_exact(2).value_or("?");
  ASSERT_NE(first, second);
  Conn& on_a = first == "a\n" ? one : two;
  Conn& on_b = first == "a\n" ? two : one;
  ASSERT_EQ(write_file(lb.control_dir() + "/vips/test/backends/a/shutdown", "1"), 0);
  char buf[8];
  EXPECT_EQ(on_a.read_some(buf, sizeof(buf), 2000), -ECONNRESET);
  ASSERT_TRUE(on_b.send_all("ok"));
  EXPECT_EQ(on_b.read_exact(2).value_or("?"), "ok");
  EXPECT_EQ(read_file(lb.control_dir() + "/workers/0/shutdown_closes"), "1");
}

}  // namespace
}  // namespace ringlb::test
