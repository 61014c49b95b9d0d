// Forward-mode VIPs in the control tree, without FUSE, root or a program (label unit):
// vips/<forward vip>/ comes from the running config, every write is a Runtime edit that
// passes the publish hook (where ringlbd writes the XDP maps), and a change the hook
// refuses changes nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/control/tree.h"

namespace ringlb::control {
namespace {

constexpr const char* kConfig = R"(
[daemon]
drain_timeout_ms = 200
[xdp]
interface = "lo"
steer = false
[[vip]]
name = "fwd"
listen = "10.0.0.10:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.0.1.1"
[[vip.backend]]
name = "b2"
address = "10.0.1.2"
weight = 3
)";

class ForwardTree : public testing::Test {
 protected:
  void SetUp() override {
    auto config = parse_config(kConfig, "test");
    ASSERT_TRUE(config) << config.error().message;
    runtime_.set_publish_hook([this](const Config&, const Runtime::BackendHealth& healthy) {
      ++published_;
      last_healthy_b1_ = healthy("fwd", "b1");
      return refuse_ ? Result<void>(Error{"the XDP maps refused it", EINVAL}) : Result<void>();
    });
    ASSERT_TRUE(runtime_.apply(*config));
  }

  std::string get(const std::string& path) {
    auto v = tree_.read(path);
    return v ? *v : "<error " + std::to_string(v.error().code) + ">";
  }
  int put(const std::string& path, const std::string& value) {
    auto done = tree_.write(path, value);
    return done ? 0 : done.error().code;
  }
  const BackendSpec* backend(const std::string& name) {
    for (const auto& b : runtime_.config()->vips[0].backends) {
      if (b.name == name) {
        return &b;
      }
    }
    return nullptr;
  }

  Runtime runtime_{1};
  ControlTree tree_{runtime_, []() -> Result<void> { return {}; },
                    "/sys/fs/bpf/ringlb-forward-tree-test-none"};
  int published_ = 0;
  bool last_healthy_b1_ = false;
  bool refuse_ = false;
};

TEST_F(ForwardTree, ListsForwardVipsWithTheirFiles) {
  EXPECT_EQ(*tree_.list("/vips"), std::vector<std::string>{"fwd"});
  EXPECT_EQ(*tree_.list("/vips/fwd"),
            (std::vector<std::string>{"listen", "mode", "protocol", "backends"}));
  EXPECT_EQ(*tree_.list("/vips/fwd/backends"), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(*tree_.list("/vips/fwd/backends/b1"),
            (std::vector<std::string>{"address", "weight", "state", "health"}));
  EXPECT_EQ(get("/vips/fwd/mode"), "forward\n");
  EXPECT_EQ(get("/vips/fwd/listen"), "10.0.0.10:80\n");
  EXPECT_EQ(get("/vips/fwd/backends/b2/address"), "10.0.1.2\n");
  EXPECT_EQ(get("/vips/fwd/backends/b2/weight"), "3\n");
  EXPECT_EQ(get("/vips/fwd/backends/b2/health"), "up\n");
  EXPECT_EQ(tree_.stat("/vips/fwd/policy").error().code, ENOENT);
  EXPECT_EQ(tree_.stat("/vips/fwd/backends/b1/active").error().code, ENOENT);
}

TEST_F(ForwardTree, WritesGoThroughThePublishHook) {
  const int before = published_;
  EXPECT_EQ(put("/vips/fwd/backends/b1/weight", "7\n"), 0);
  EXPECT_EQ(published_, before + 1);
  EXPECT_TRUE(last_healthy_b1_);
  EXPECT_EQ(backend("b1")->weight, 7u);
  EXPECT_EQ(get("/vips/fwd/backends/b1/weight"), "7\n");
  EXPECT_EQ(put("/vips/fwd/backends/b1/state", "drain"), 0);
  EXPECT_EQ(backend("b1")->state, AdminState::drain);
  EXPECT_EQ(put("/vips/fwd/backends/b1/address", "10.0.1.9"), 0);
  EXPECT_EQ(backend("b1")->address.to_string(), "10.0.1.9:0");
}

// Two rmdirs at once of the forward VIP's two backends: exactly one succeeds (the
// last-backend check runs under the lock that applies the removal).
TEST_F(ForwardTree, ConcurrentRmdirsKeepTheLastBackend) {
  for (int round = 0; round < 100; ++round) {
    std::atomic<int> ready{0};
    int results[2] = {-1, -1};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        auto removed =
            tree_.remove_directory(i == 0 ? "/vips/fwd/backends/b1" : "/vips/fwd/backends/b2");
        results[i] = removed ? 0 : removed.error().code;
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    ASSERT_EQ(runtime_.config()->vips[0].backends.size(), 1u) << "round " << round;
    ASSERT_EQ(std::min(results[0], results[1]), 0) << "round " << round;
    ASSERT_EQ(std::max(results[0], results[1]), EBUSY) << "round " << round;
    const std::string gone = results[0] == 0 ? "b1" : "b2";
    ASSERT_TRUE(tree_.make_directory("/vips/fwd/backends/" + gone));
    ASSERT_EQ(put("/vips/fwd/backends/" + gone + "/address", "10.0.1.7"), 0);
  }
}

TEST_F(ForwardTree, BadWritesChangeNothing) {
  EXPECT_EQ(put("/vips/fwd/backends/b1/address", "10.0.1.9:80"), EINVAL);
  EXPECT_EQ(put("/vips/fwd/backends/b1/weight", "20000"), EINVAL);
  EXPECT_EQ(put("/vips/fwd/listen", "10.0.0.11:80"), EACCES);
  EXPECT_EQ(put("/vips/fwd/backends/b1/health", "down"), EACCES);
  refuse_ = true;  // the XDP maps cannot take it: the runtime keeps the old config
  EXPECT_EQ(put("/vips/fwd/backends/b1/weight", "9"), EINVAL);
  EXPECT_EQ(backend("b1")->weight, 1u);
  EXPECT_EQ(backend("b1")->address.to_string(), "10.0.1.1:0");
}

TEST_F(ForwardTree, MkdirAddressRmdir) {
  ASSERT_TRUE(tree_.make_directory("/vips/fwd/backends/b3"));
  EXPECT_EQ(get("/vips/fwd/backends/b3/health"), "pending\n");
  EXPECT_EQ(backend("b3"), nullptr);
  EXPECT_EQ(put("/vips/fwd/backends/b3/weight", "2"), 0);
  EXPECT_EQ(put("/vips/fwd/backends/b3/address", "10.0.1.3:80"), EINVAL);
  EXPECT_EQ(put("/vips/fwd/backends/b3/address", "10.0.1.3"), 0);
  ASSERT_NE(backend("b3"), nullptr);
  EXPECT_EQ(backend("b3")->weight, 2u);
  EXPECT_EQ(tree_.make_directory("/vips/fwd/backends/b3").error().code, EEXIST);
  ASSERT_TRUE(tree_.remove_directory("/vips/fwd/backends/b3"));
  EXPECT_EQ(backend("b3"), nullptr);
  ASSERT_TRUE(tree_.remove_directory("/vips/fwd/backends/b2"));
  EXPECT_EQ(tree_.remove_directory("/vips/fwd/backends/b1").error().code, EBUSY);
}

}  // namespace
}  // namespace ringlb::control
