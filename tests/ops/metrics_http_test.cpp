// MetricsHttp (src/daemon/metrics_http.h) on loopback, without a daemon: what it answers
// to each method and path, and its bounds (a slow client is cut off at the deadline, a
// flood of idle connections holds few descriptors, stop() does not wait for clients).
#include "daemon/metrics_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace ringlb::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

SocketAddress loopback(uint16_t port) {
  return SocketAddress{.ip = *IpAddress::parse("127.0.0.1"), .port = port};
}

// A client socket, closed on scope exit. `wait` false: the connect is started, not
// waited for (a full backlog would keep it waiting for SYN retries).
class Client {
 public:
  explicit Client(const SocketAddress& to, bool wait = true)
      : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (wait ? 0 : SOCK_NONBLOCK), 0)) {
    sockaddr_storage sa{};
    const socklen_t length = to.to_sockaddr(sa);
    timeval timeout{.tv_sec = 10, .tv_usec = 0};  // a hung server fails the test, not CI
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), length) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  bool send(std::string_view text) {
    return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == ssize_t(text.size());
  }
  // Everything until the server closes (or resets, or 10 s pass).
  std::string read_all() {
    std::string all;
    char buffer[4096];
    ssize_t got;
    while ((got = ::recv(fd_, buffer, sizeof(buffer), 0)) > 0) {
      all.append(buffer, static_cast<size_t>(got));
    }
    return all;
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string exchange(const SocketAddress& to, std::string_view request) {
  Client client(to);
  EXPECT_TRUE(client.connected());
  EXPECT_TRUE(client.send(request));
  return client.read_all();
}

std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

std::string body(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

size_t open_descriptors() {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

constexpr const char* kBody = "# TYPE ringlb_worker_accepted_total counter\n";

class MetricsHttpTest : public testing::Test {
 protected:
  void start(MetricsHttpOptions options = {.listen = loopback(0)}) {
    auto started = http_.start(
        options,
        [this]() -> Result<std::string> {
          if (fail_) {
            return Error{"cannot read counters"};
          }
          return std::string(kBody);
        },
        [](const std::string& trouble) { ADD_FAILURE() << trouble; });
    ASSERT_TRUE(started) << started.error().message;
    ASSERT_NE(http_.address().port, 0);
  }
  std::string get(std::string_view request) { return exchange(http_.address(), request); }

  MetricsHttp http_;
  std::atomic<bool> fail_{false};
};

TEST_F(MetricsHttpTest, GetMetricsIsTheRenderedBodyInPrometheusTextFormat) {
  start();
  const std::string response = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_NE(response.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos)
      << response;
  EXPECT_NE(response.find("\r\nConnection: close\r\n"), std::string::npos) << response;
  EXPECT_EQ(body(response), kBody);
  // A query string is no other path.
  EXPECT_EQ(status_line(get("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")), "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpTest, HeadHasTheHeadersAndNoBody) {
  start();
  const std::string response = get("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_NE(response.find("\r\nContent-Length: " + std::to_string(std::string(kBody).size())),
            std::string::npos)
      << response;
  EXPECT_EQ(body(response), "");
}

TEST_F(MetricsHttpTest, EveryOtherPathIsNotFound) {
  start();
  for (const char* path : {"/", "/metrics/x", "/metricsx", "/stats", "/../metrics"}) {
    const std::string response = get(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_line(response), "HTTP/1.1 404 Not Found") << path;
  }
}

TEST_F(MetricsHttpTest, EveryOtherMethodIsNotAllowed) {
  start();
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    const std::string response =
        get(std::string(method) + " /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(status_line(response), "HTTP/1.1 405 Method Not Allowed") << method;
    EXPECT_NE(response.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << response;
  }
}

TEST_F(MetricsHttpTest, ARenderErrorIsAServerError) {
  start();
  fail_ = true;
  const std::string response = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_line(response), "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(body(response), "cannot read counters\n");
}

TEST_F(MetricsHttpTest, AClientTricklingItsRequestIsCutOffAtTheDeadline) {
  start({.listen = loopback(0), .threads = 1, .queued = 1, .deadline = 500ms});
  Client slow(http_.address());
  ASSERT_TRUE(slow.connected());
  const auto begin = Clock::now();
  // A byte every 100 ms: each read is quick, the whole request never ends.
  std::thread trickle([&slow] {
    for (int i = 0; i < 30 && slow.send("X"); ++i) {
      std::this_thread::sleep_for(100ms);
    }
  });
  slow.read_all();  // returns when the server closes the connection
  const auto cut_after = Clock::now() - begin;
  trickle.join();
  EXPECT_LT(cut_after, 2s);
  // The one thread is free again.
  EXPECT_EQ(status_line(get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")), "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpTest, AnEndlessRequestLineIsCutOffAfterTheSizeLimit) {
  start({.listen = loopback(0), .threads = 1, .queued = 1, .deadline = 5s});
  Client flood(http_.address());
  ASSERT_TRUE(flood.connected());
  const auto begin = Clock::now();
  const std::string chunk(4096, 'a');
  flood.send("GET /");
  for (int i = 0; i < 64 && flood.send(chunk); ++i) {
  }
  EXPECT_EQ(status_line(flood.read_all()), "");
  EXPECT_LT(Clock::now() - begin, 3s);  // well before the deadline
  EXPECT_EQ(status_line(get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")), "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpTest, AFloodOfIdleConnectionsHoldsAtMostThreadsPlusQueuedDescriptors) {
  const MetricsHttpOptions options{
      .listen = loopback(0), .threads = 1, .queued = 2, .deadline = 2s};
  start(options);
  std::this_thread::sleep_for(50ms);
  const size_t before = open_descriptors();
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 40; ++i) {
    idle.push_back(std::make_unique<Client>(http_.address(), /*wait=*/false));
  }
  std::this_thread::sleep_for(300ms);
  const size_t server_side = open_descriptors() - before - idle.size();
  // One being served, `queued` waiting, one accepted and waiting for queue space.
  EXPECT_LE(server_side, options.threads + options.queued + 1);
  idle.clear();
  EXPECT_EQ(status_line(get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")), "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpTest, StopDoesNotWaitForAnIdleClient) {
  start({.listen = loopback(0), .threads = 1, .queued = 1, .deadline = 30s});
  Client idle(http_.address());
  ASSERT_TRUE(idle.connected());
  std::this_thread::sleep_for(100ms);
  const auto begin = Clock::now();
  http_.stop();
  EXPECT_LT(Clock::now() - begin, 2s);
  EXPECT_EQ(idle.read_all(), "");
  Client refused(http_.address());
  EXPECT_FALSE(refused.connected());
}

TEST(MetricsHttp, AnAddressInUseIsRefusedWithTheReason) {
  // A listener as ringlbd's VIPs make them (SO_REUSEPORT): the metrics socket must not
  // share its address.
  const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int yes = 1;
  ::setsockopt(taken, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof(yes));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t length = sizeof(sa);
  ::getsockname(taken, reinterpret_cast<sockaddr*>(&sa), &length);
  const SocketAddress address = loopback(ntohs(sa.sin_port));

  MetricsHttp http;
  auto started = http.start(
      {.listen = address}, [] { return Result<std::string>("x"); }, [](const std::string&) {});
  ::close(taken);
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().message,
            "cannot serve metrics on " + address.to_string() + ": Address already in use");
  EXPECT_EQ(started.error().code, EADDRINUSE);
}

}  // namespace
}  // namespace ringlb::daemon
