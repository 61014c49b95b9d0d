// Hand-over (issue 18): `ringlbd --handover` takes the listening sockets of the ringlbd
// serving the same control_dir; the old one stops accepting, gives up its control mount
// and lock, drains and exits. Clients connecting all along are never refused or reset,
// a connection open through the old daemon finishes byte-exact, and afterwards the
// control tree is the new daemon's. Refused cleanly (nothing changes) when no daemon
// runs, and when the new one would leave a listener without a worker.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace ringlb::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string pid_of_tree(const std::string& control_dir) {
  std::string line;
  std::getline(std::ifstream(control_dir + "/pid"), line);
  return line;
}

// Mounts on `dir` (a stacked second mount would show twice).
int mounts_on(const std::string& dir) {
  std::istringstream mounts(read_file("/proc/mounts"));
  std::string line;
  int count = 0;
  while (std::getline(mounts, line)) {
    count += line.find(" " + dir + " ") != std::string::npos ? 1 : 0;
  }
  return count;
}

// Clients that each open a connection, send a request, read the echo and close, in a
// loop until stopped (at most `limit`): every failure is counted, and the first few are
// described (what failed, and when, in ms since the clients started).
class Clients {
 public:
  Clients(uint16_t port, int threads, std::chrono::seconds limit) {
    const auto start = Clock::now();
    const auto deadline = start + limit;
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, port, t, start, deadline] {
        for (int i = 0; !stop_ && Clock::now() < deadline; ++i) {
          const std::string request = "client " + std::to_string(t) + " request " +
                                      std::to_string(i) + std::string(200, 'x');
          const auto began = Clock::now();
          Conn conn = Conn::open("127.0.0.1", port, 3000);
          const char* trouble = !conn.ok()                      ? "connect"
                                : !conn.send_all(request, 3000) ? "send"
                                                                : nullptr;
          std::string echo;
          if (trouble == nullptr) {
            char buf[512];
            while (echo.size() < request.size()) {
              const ssize_t r = conn.read_some(buf, sizeof(buf), 3000);
              if (r == -EAGAIN || r == -EINTR) {
                continue;
              }
              if (r <= 0) {
                trouble = r == 0 ? "EOF before the echo" : std::strerror(static_cast<int>(-r));
                break;
              }
              echo.append(buf, static_cast<size_t>(r));
            }
          }
          if (trouble == nullptr && echo != request) {
            trouble = "a different echo";
          }
          if (trouble == nullptr) {
            served_.fetch_add(1);
            continue;
          }
          failed_.fetch_add(1);
          auto ms = [start](Clock::time_point at) {
            return std::chrono::duration_cast<std::chrono::milliseconds>(at - start).count();
          };
          std::lock_guard lock(mu_);
          if (failures_.size() < 8) {
            sockaddr_in local{};
            socklen_t local_len = sizeof(local);
            ::getsockname(conn.fd(), reinterpret_cast<sockaddr*>(&local), &local_len);
            failures_ += "  client " + std::to_string(t) + " (port " +
                         std::to_string(ntohs(local.sin_port)) + "): " + trouble + " after " +
                         std::to_string(echo.size()) + " bytes, began at " +
                         std::to_string(ms(began)) + " ms, failed at " +
                         std::to_string(ms(Clock::now())) + " ms\n";
          }
        }
      });
    }
  }
  ~Clients() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }
  uint64_t served() const { return served_; }
  uint64_t failed() const { return failed_; }
  std::string failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  mutable std::mutex mu_;
  std::string failures_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> failed_{0};
  std::vector<std::thread> threads_;
};

// GET /metrics on 127.0.0.1:`port`: the whole response, or "" when nothing answers.
std::string metrics(uint16_t port) {
  Conn conn = Conn::open("127.0.0.1", port, 2000);
  if (!conn.ok() || !conn.send_all("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", 2000)) {
    return "";
  }
  return conn.read_to_eof(3000).value_or("");
}

bool echoes(Conn& conn, const std::string& text) {
  return conn.send_all(text, 3000) && conn.read_exact(text.size(), 3000).value_or("") == text;
}

TEST(Handover, TakesTheListenersWithoutRefusingAClient) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "the control filesystem (where a hand-over finds the running daemon) "
                    "needs root";
  }
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  const uint16_t metrics_port = free_port();
  const std::string config = proxy_config(
      port, {&a}, "",
      "workers = 2\nmetrics_listen = \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n");
  Ringlbd old_lb(config);
  const std::string old_pid = std::to_string(old_lb.pid());
  ASSERT_EQ(pid_of_tree(old_lb.control_dir()), old_pid);
  ASSERT_NE(metrics(metrics_port).find("ringlb_"), std::string::npos);
  // A connection through the old daemon that stays open across the hand-over.
  Conn held = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(echoes(held, "before the hand-over"));

  Clients clients(port, 4, 30s);
  const auto t0 = Clock::now();
  auto since = [t0] {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  };
  std::this_thread::sleep_for(500ms);
  const uint64_t served_before = clients.served();
  std::string timeline = "  new daemon started at " + since() + " ms";
  Ringlbd new_lb(config, {"--handover"}, 0, old_lb.control_dir());
  timeline += ", serving at " + since() + " ms";
  std::this_thread::sleep_for(700ms);
  const uint64_t served_during = clients.served();
  // The old one accepts nothing more but still serves what it has.
  EXPECT_TRUE(echoes(held, "after the hand-over, still through the old daemon"));
  held = Conn();
  // Its connections are short: it exits well inside its drain timeout (5 s), which it
  // would only reach with a connection it never saw end.
  EXPECT_EQ(old_lb.wait_exit(3000), 0) << "the old daemon did not drain and exit:\n"
                                       << old_lb.log();
  timeline += ", the old one had exited at " + since() + " ms\n";
  std::this_thread::sleep_for(300ms);
  clients.stop();

  std::cout << "clients served " << served_before << " before the hand-over, "
            << served_during - served_before << " in its 700 ms, " << clients.served()
            << " in all; failed " << clients.failed() << "\n";
  EXPECT_EQ(clients.failed(), 0u) << "clients refused or cut during the hand-over; served "
                                  << clients.served() << "\n"
                                  << timeline << clients.failures() << "old:\n"
                                  << old_lb.log() << "\nnew:\n"
                                  << new_lb.log();
  EXPECT_GT(served_before, 10u);
  EXPECT_GT(clients.served(), served_during) << "nobody served after the old daemon left";
  // The control tree is the new daemon's, mounted once, and the old one said what it did.
  EXPECT_EQ(pid_of_tree(old_lb.control_dir()), std::to_string(new_lb.pid()));
  EXPECT_EQ(mounts_on(old_lb.control_dir()), 1);
  EXPECT_NE(old_lb.log().find("stepping down"), std::string::npos) << old_lb.log();
  EXPECT_NE(new_lb.log().find("took over from ringlbd pid " + old_pid), std::string::npos)
      << new_lb.log();
  EXPECT_GT(new_lb.worker_total("accepted"), 0u);
  // The metrics port moved too: the old daemon is gone, the new one answers it.
  const std::string body = metrics(metrics_port);
  EXPECT_NE(body.find("ringlb_worker_accepted_total"), std::string::npos) << body;
  // And it can be handed over again: the new daemon serves hand-overs in turn.
  Conn after = Conn::open("127.0.0.1", port);
  EXPECT_TRUE(echoes(after, "served by the new daemon"));
}

// Runs ringlbd to its exit; returns the exit status and fills `output`.
int run_ringlbd(const std::vector<std::string>& args, std::string& output) {
  char dir_template[] = "/tmp/ringlbd-handover-XXXXXX";
  const std::string out = std::string(::mkdtemp(dir_template)) + "/out";
  std::string command = "timeout 20 " RINGLBD_PATH;
  for (const auto& arg : args) {
    command += " '" + arg + "'";
  }
  const int status = std::system((command + " >" + out + " 2>&1").c_str());
  output = read_file(out);
  std::filesystem::remove_all(std::filesystem::path(out).parent_path());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Handover, RefusedCleanlyWhenNothingRunsOrWorkersWouldBeMissing) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "the control filesystem needs root";
  }
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  const std::string config = proxy_config(port, {&a}, "", "workers = 2\n");
  {
    // Nothing serves this control_dir.
    Ringlbd probe(config);  // only for its config file and a fresh directory
    const std::string lonely = probe.control_dir() + "-none";
    std::string output;
    EXPECT_EQ(run_ringlbd({"--config", probe.config_path(), "--control-dir", lonely, "--handover"},
                          output),
              1);
    EXPECT_NE(output.find("--handover: no ringlbd serves control_dir " + lonely), std::string::npos)
        << output;
    std::filesystem::remove_all(lonely);
  }
  Ringlbd old_lb(config);
  const std::string old_pid = std::to_string(old_lb.pid());
  // One worker cannot take two workers' sockets: the clients queued on the second
  // would wait for ever. Refused, and the old daemon keeps serving as before.
  std::string output;
  EXPECT_EQ(run_ringlbd({"--config", old_lb.config_path(), "--control-dir", old_lb.control_dir(),
                         "--workers", "1", "--handover"},
                        output),
            1);
  EXPECT_NE(output.find("start this one with --workers 2 or more"), std::string::npos) << output;
  EXPECT_EQ(pid_of_tree(old_lb.control_dir()), old_pid);
  EXPECT_EQ(mounts_on(old_lb.control_dir()), 1);
  Conn conn = Conn::open("127.0.0.1", port);
  EXPECT_TRUE(echoes(conn, "still served by the first daemon"));
  EXPECT_EQ(old_lb.log().find("stepping down"), std::string::npos) << old_lb.log();
}

}  // namespace
}  // namespace ringlb::test
