// ControlTree without FUSE or root: the control filesystem's rules, file by file.
#include "ringlb/control/tree.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../proxy/harness.h"
#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::control {
namespace {

class Tree : public testing::Test {
 protected:
  void SetUp() override {
    const uint16_t port = test::free_port();
    auto config = parse_config(
        "[daemon]\ndrain_timeout_ms = 200\n[[vip]]\nname = \"web\"\nlisten = \"127.0.0.1:" +
            std::to_string(port) +
            "\"\npolicy = \"weighted\"\n[[vip.backend]]\nname = \"a\"\naddress = "
            "\"127.0.0.1:9001\"\nweight = 5\n[[vip.backend]]\nname = \"b\"\naddress = "
            "\"127.0.0.1:9002\"\n",
        "test");
    ASSERT_TRUE(config) << config.error().message;
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

  Runtime runtime_{2};
  int reloads_ = 0;
  ControlTree tree_{runtime_,
                    [this]() -> Result<void> {
                      ++reloads_;
                      return {};
                    },
                    "/sys/fs/bpf/ringlb-tree-test-none"};
};

TEST_F(Tree, ListsTheDocumentedTree) {
  EXPECT_EQ(*tree_.list("/"),
            (std::vector<std::string>{"metrics", "pid", "reload", "stats", "stats.json", "vips",
                                      "warnings", "workers", "xdp"}));
  EXPECT_EQ(*tree_.list("/xdp"),
            (std::vector<std::string>{"interface", "pin_path", "program", "verdicts", "vips"}));
  EXPECT_EQ(tree_.list("/xdp/verdicts")->front(), "pass_not_ip");
  EXPECT_TRUE(tree_.list("/xdp/vips")->empty());  // no program pinned its maps there
  EXPECT_EQ(tree_.stat("/xdp/vips/web").error().code, ENOENT);
  EXPECT_EQ(*tree_.list("/vips"), std::vector<std::string>{"web"});
  EXPECT_EQ(*tree_.list("/vips/web/backends"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*tree_.list("/workers"), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(tree_.stat("/vips/nope").error().code, ENOENT);
  EXPECT_EQ(tree_.stat("/vips/web/backends/a/nope").error().code, ENOENT);
  EXPECT_EQ(tree_.stat("/workers/2").error().code, ENOENT);
}

TEST_F(Tree, ReadsLiveValues) {
  EXPECT_EQ(get("/vips/web/policy"), "weighted\n");
  EXPECT_EQ(get("/vips/web/mode"), "proxy\n");
  EXPECT_EQ(get("/vips/web/backends/a/weight"), "5\n");
  EXPECT_EQ(get("/vips/web/backends/a/state"), "up\n");
  EXPECT_EQ(get("/vips/web/backends/a/health"), "up\n");
  EXPECT_EQ(get("/vips/web/backends/a/address"), "127.0.0.1:9001\n");
  EXPECT_EQ(get("/vips/web/backends/a/active"), "0\n");
  EXPECT_EQ(get("/workers/1/accepted"), "0\n");
}

TEST_F(Tree, WritesApplyAtOnce) {
  EXPECT_EQ(put("/vips/web/backends/a/weight", "7\n"), 0);
  EXPECT_EQ(get("/vips/web/backends/a/weight"), "7\n");
  EXPECT_EQ(runtime_.find_vip("web")->state().load()->pool->find("a")->spec.weight, 7u);
  EXPECT_EQ(put("/vips/web/policy", "least_request"), 0);
  EXPECT_EQ(runtime_.find_vip("web")->state().load()->spec.policy, PolicyKind::least_request);
  EXPECT_EQ(put("/vips/web/backends/b/state", "drain\n"), 0);
  EXPECT_EQ(runtime_.find_vip("web")->state().load()->pool->eligible().size(), 1u);
  EXPECT_EQ(put("/vips/web/idle_timeout_ms", "1234"), 0);
  EXPECT_EQ(get("/vips/web/idle_timeout_ms"), "1234\n");
  EXPECT_EQ(put("/vips/web/backends/a/address", "127.0.0.1:9009"), 0);
  EXPECT_EQ(get("/vips/web/backends/a/address"), "127.0.0.1:9009\n");
}

TEST_F(Tree, BadValuesFailWithEinvalAndChangeNothing) {
  const auto before = runtime_.config();
  struct Case {
    const char* path;
    const char* value;
  } cases[] = {
      {"/vips/web/backends/a/weight", "10001"},       {"/vips/web/backends/a/weight", "-1"},
      {"/vips/web/backends/a/weight", "five"},        {"/vips/web/backends/a/weight", ""},
      {"/vips/web/backends/a/weight", "5 6"},         {"/vips/web/backends/a/state", "off"},
      {"/vips/web/backends/a/address", "nowhere:80"}, {"/vips/web/policy", "fastest"},
      {"/vips/web/connect_timeout_ms", "0"},          {"/vips/web/connect_retries", "17"},
      {"/vips/web/send_proxy_v2", "maybe"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(put(c.path, c.value), EINVAL) << c.path << " <- " << c.value;
  }
  EXPECT_EQ(runtime_.config(), before) << "a bad write published a new config";
  EXPECT_EQ(get("/vips/web/backends/a/weight"), "5\n");
}

TEST_F(Tree, ReadOnlyFilesRefuseWrites) {
  for (const char* path :
       {"/stats", "/metrics", "/vips/web/listen", "/vips/web/mode", "/vips/web/backends/a/active",
        "/vips/web/backends/a/health", "/workers/0/accepted"}) {
    EXPECT_EQ(put(path, "1"), EACCES) << path;
  }
  EXPECT_EQ(tree_.read("/vips/web/backends/a/shutdown").error().code, EACCES);
}

TEST_F(Tree, MkdirThenAddressAddsABackend) {
  ASSERT_TRUE(tree_.make_directory("/vips/web/backends/c"));
  EXPECT_EQ(get("/vips/web/backends/c/health"), "pending\n");
  EXPECT_EQ(runtime_.find_vip("web")->state().load()->pool->find("c"), nullptr)
      << "a backend without address must take no traffic";
  EXPECT_EQ(put("/vips/web/backends/c/weight", "3"), 0);
  EXPECT_EQ(put("/vips/web/backends/c/address", "bad"), EINVAL);
  EXPECT_EQ(put("/vips/web/backends/c/address", "127.0.0.1:9003"), 0);
  const Backend* c = runtime_.find_vip("web")->state().load()->pool->find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->spec.weight, 3u);
  EXPECT_EQ(*tree_.list("/vips/web/backends"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(tree_.make_directory("/vips/web/backends/c").error().code, EEXIST);
  EXPECT_EQ(tree_.make_directory("/vips/web/backends/bad/name").error().code, EPERM);
  EXPECT_EQ(tree_.make_directory("/vips/web/backends/a b").error().code, EINVAL);
  EXPECT_EQ(tree_.make_directory("/vips/other").error().code, EPERM);
}

TEST_F(Tree, RmdirDrainsAndRemovesButKeepsTheLastBackend) {
  ASSERT_TRUE(tree_.remove_directory("/vips/web/backends/b"));
  EXPECT_EQ(runtime_.find_vip("web")->state().load()->pool->find("b"), nullptr);
  EXPECT_EQ(tree_.remove_directory("/vips/web/backends/a").error().code, EBUSY);
  EXPECT_EQ(tree_.remove_directory("/vips/web/backends/zzz").error().code, ENOENT);
  ASSERT_TRUE(tree_.make_directory("/vips/web/backends/p"));
  ASSERT_TRUE(tree_.remove_directory("/vips/web/backends/p"));  // pending: just forgotten
  EXPECT_EQ(tree_.stat("/vips/web/backends/p").error().code, ENOENT);
}

// Two rmdirs at once of a VIP's last two backends: the last-backend check runs under the
// lock that applies the removal, so exactly one of them succeeds, and the backend that
// stays is still up (the refused rmdir must not leave it draining).
TEST_F(Tree, ConcurrentRmdirsKeepTheLastBackend) {
  for (int round = 0; round < 30; ++round) {
    std::atomic<int> ready{0};
    int results[2] = {-1, -1};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        auto removed =
            tree_.remove_directory(i == 0 ? "/vips/web/backends/a" : "/vips/web/backends/b");
        results[i] = removed ? 0 : removed.error().code;
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    ASSERT_EQ(std::min(results[0], results[1]), 0) << "round " << round;
    ASSERT_EQ(std::max(results[0], results[1]), EBUSY) << "round " << round;
    const std::string kept = results[0] == 0 ? "b" : "a";
    const std::string gone = results[0] == 0 ? "a" : "b";
    ASSERT_EQ(runtime_.find_vip("web")->state().load()->pool->backends().size(), 1u);
    ASSERT_EQ(get("/vips/web/backends/" + kept + "/state"), "up\n") << "round " << round;
    ASSERT_TRUE(tree_.make_directory("/vips/web/backends/" + gone));
    ASSERT_EQ(put("/vips/web/backends/" + gone + "/address", "127.0.0.1:9009"), 0);
  }
}

TEST_F(Tree, ShutdownBumpsTheBackendsEpoch) {
  const Backend* a = runtime_.find_vip("web")->state().load()->pool->find("a");
  const uint64_t before = a->stats->shutdown_epoch.load();
  EXPECT_EQ(put("/vips/web/backends/a/shutdown", "1"), 0);
  EXPECT_EQ(a->stats->shutdown_epoch.load(), before + 1);
}

TEST_F(Tree, ReloadCallsTheDaemonsReload) {
  EXPECT_EQ(put("/reload", "1"), 0);
  EXPECT_EQ(reloads_, 1);
}

TEST_F(Tree, StatsAndMetricsCarryEveryCounter) {
  const std::string stats = get("/stats");
  for (const char* name : {"worker.0.accepted ", "worker.1.splice_calls ", "proxy.bytes_in ",
                           "proxy.connect_time_us.p99 ", "vip.web.backend.a.connections "}) {
    EXPECT_NE(stats.find(name), std::string::npos) << name;
  }
  const std::string metrics = get("/metrics");
  for (const char* text :
       {"# TYPE ringlb_worker_accepted_total counter", "ringlb_worker_active{worker=\"0\"} 0",
        "ringlb_connect_time_seconds_bucket{le=\"+Inf\"} 0",
        "ringlb_backend_active{vip=\"web\",backend=\"a\"} 0"}) {
    EXPECT_NE(metrics.find(text), std::string::npos) << text;
  }
}

TEST_F(Tree, XdpShowsNoneWithoutAnXdpSectionOrProgram) {
  EXPECT_EQ(get("/xdp/interface"), "none\n");
  EXPECT_EQ(get("/xdp/program"), "none\n");
  EXPECT_EQ(get("/xdp/pin_path"), "/sys/fs/bpf/ringlb-tree-test-none\n");
  EXPECT_EQ(get("/xdp/verdicts/tx_forward"), "unavailable\n");
  EXPECT_EQ(put("/xdp/verdicts/tx_forward", "1"), EACCES);
  EXPECT_EQ(tree_.stat("/xdp/verdicts/nope").error().code, ENOENT);
}

TEST_F(Tree, HardwareCountersSayUnavailableWhenAbsent) {
  // Workers never started here, so no perf fd was opened.
  EXPECT_EQ(get("/workers/0/cycles"), "unavailable\n");
  EXPECT_EQ(get("/workers/0/cpu"), "none\n");
}

// The names the tree, stats and metrics show follow enum ringlb_verdict one to one.
TEST(VerdictNames, FollowTheEnum) {
  EXPECT_EQ(xdp::verdict_name(RINGLB_V_PASS_NOT_IP), "pass_not_ip");
  EXPECT_EQ(xdp::verdict_name(RINGLB_V_PASS_STEER_NO_CPU), "pass_steer_no_cpu");
  EXPECT_EQ(xdp::verdict_name(RINGLB_V_TX_FORWARD), "tx_forward");
  EXPECT_EQ(xdp::verdict_name(RINGLB_V_DROP_FIB), "drop_fib");
  EXPECT_EQ(xdp::verdict_name(RINGLB_V_DROP_NO_NEIGH), "drop_no_neigh");
  EXPECT_EQ(xdp::verdict_name(RINGLB_V_DROP_ERROR), "drop_error");
  EXPECT_EQ(xdp::verdict_name(RINGLB_V_MAX), "unknown");
}

}  // namespace
}  // namespace ringlb::control
