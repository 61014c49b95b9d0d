// Integrity under faults and live changes (issue 14): one regression test per finding.
//   1. a refusing backend costs a retry, never a request, under every policy, and is
//      ejected by passive ejection even without a [vip.health] table;
//   2. a policy switch while connects are pending cannot pair a policy with a pool it
//      was not built for (it crashed the worker);
//   3. a VIP that a reload removes, renames or moves stops accepting at once;
//   4. closes that would discard bytes, or happen while bytes are in flight, are resets
//      to both peers, never FINs.
// (The fifth, concurrent control writes, is Tree.ConcurrentRmdirsKeepTheLastBackend.)
//
// Why this file is long: one regression test per finding of issue 14, each
// with every policy; they share the refusing/black-holing backend fixtures.
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "harness.h"
#include "ringlb/model/model.h"

namespace ringlb::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const PolicyKind kPolicies[] = {PolicyKind::round_robin, PolicyKind::weighted,
                                PolicyKind::least_request, PolicyKind::random, PolicyKind::ip_hash};

std::string vip_block(const std::string& name, uint16_t port, const std::string& settings,
                      const std::vector<std::pair<std::string, std::string>>& backends) {
  std::string text = "[[vip]]\nname = \"" + name +
                     "\"\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n" + settings;
  for (const auto& [backend, address] : backends) {
    text += "[[vip.backend]]\nname = \"" + backend + "\"\naddress = \"" + address + "\"\n";
  }
  return text;
}

// Reloads with SIGHUP and waits until ringlbd says it applied the file (or refused it).
void reload(Ringlbd& lb, const std::string& config) {
  auto count = [&] {
    const std::string log = lb.log();
    size_t n = 0;
    for (size_t at = 0; (at = log.find("reload", at)) != std::string::npos; ++at) {
      ++n;
    }
    return n;
  };
  const size_t before = count();
  lb.write_config(config);
  lb.signal(SIGHUP);
  const auto deadline = Clock::now() + 5s;
  while (count() == before && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_GT(count(), before) << "ringlbd did not report the reload:\n" << lb.log();
}

// Waits until the counter `name` reaches `at_least` (the health monitor acts a moment
// after the workers count).
bool wait_for_stat(Ringlbd& lb, const std::string& name, uint64_t at_least) {
  const auto deadline = Clock::now() + 3s;
  while (lb.stat(name) < at_least) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

bool alive(const Ringlbd& lb) {
  return ::kill(lb.pid(), 0) == 0;
}

// ---- 1. a refusing backend under every policy ----------------------------------------

class RefusingBackend : public testing::TestWithParam<PolicyKind> {};

// The shape of the shipped example: two backends, connect_retries = 2, no [vip.health];
// one backend's port is closed. 16 clients at a time, one connection per request, from
// 64 source addresses (so that ip_hash sends some to each backend): every request is
// served, and passive ejection takes the refusing backend out although the VIP has no
// health table.
TEST_P(RefusingBackend, CostsARetryNeverARequestAndIsEjected) {
  Backend good("good", BackendMode::echo);
  const std::string refused = "127.0.0.1:" + std::to_string(free_port());
  const uint16_t port = free_port();
  Ringlbd lb(
      "[daemon]\nworkers = 2\n" +
      vip_block("test", port,
                "policy = \"" + std::string(to_string(GetParam())) + "\"\nconnect_retries = 2\n",
                {{"refused", refused}, {"good", good.address()}}));
  std::vector<std::string> sources;
  for (int i = 0; i < 64; ++i) {
    sources.push_back("127.0.1." + std::to_string(i + 1));
  }
  size_t completed = 0;
  size_t failed = 0;
  std::string first_error;
  for (int round = 0; round < 60; ++round) {
    const std::vector<std::string> these(sources.begin() + (round % 4) * 16,
                                         sources.begin() + (round % 4 + 1) * 16);
    const auto result = run_echo_clients("127.0.0.1", port, std::vector<uint64_t>(16, 100),
                                         uint64_t(round) << 20, 5000, these);
    completed += result.completed;
    failed += result.failed;
    if (first_error.empty()) {
      first_error = result.first_error;
    }
  }
  auto stats = lb.stats();
  EXPECT_EQ(failed, 0u) << first_error << "\n" << lb.log();
  EXPECT_EQ(completed, 960u);
  EXPECT_EQ(stats["proxy.no_backend"], 0u);
  EXPECT_GE(stats["vip.test.backend.refused.ejections"], 1u) << "passive ejection is on by default";
  // Ejected, the refusing backend is no longer picked first: it sees a small share of
  // the 960 connections (each refusal is one retry).
  EXPECT_LT(stats["vip.test.backend.refused.connect_refused"], 200u);
  EXPECT_EQ(stats["proxy.retries"], stats["vip.test.backend.refused.connect_refused"]);
}

INSTANTIATE_TEST_SUITE_P(Policies, RefusingBackend, testing::ValuesIn(kPolicies),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// eject_after_failures = 0 turns passive ejection off: the refusing backend keeps being
// tried, and still no request is lost (a connection never tries a backend twice).
TEST(RefusingBackendWithoutEjection, IsNeverEjectedAndLosesNoRequest) {
  Backend good("good", BackendMode::echo);
  const std::string refused = "127.0.0.1:" + std::to_string(free_port());
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\n" +
             vip_block("test", port,
                       "policy = \"least_request\"\nconnect_retries = 1\n"
                       "[vip.health]\ntype = \"none\"\neject_after_failures = 0\n",
                       {{"refused", refused}, {"good", good.address()}}));
  const auto result = run_echo_clients("127.0.0.1", port, std::vector<uint64_t>(200, 10), 1, 5000);
  EXPECT_EQ(result.failed, 0u) << result.first_error;
  auto stats = lb.stats();
  EXPECT_EQ(stats["vip.test.backend.refused.ejections"], 0u);
  EXPECT_GE(stats["vip.test.backend.refused.connect_refused"], 20u);
}

// A backend whose port is reserved (bound, not listening: connects are refused) until
// start() makes it an echo server on that very address: a backend that comes back.
class LateBackend {
 public:
  LateBackend() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(address);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), len) != 0) {
      throw std::runtime_error("late backend: bind failed");
    }
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&address), &len);
    port_ = ntohs(address.sin_port);
  }
  ~LateBackend() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Listens and echoes each connection's bytes until its EOF, one connection at a time.
  void start() {
    ASSERT_EQ(::listen(fd_.get(), 64), 0);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{.fd = fd_.get(), .events = POLLIN, .revents = 0};
        if (::poll(&p, 1, 50) != 1) {
          continue;
        }
        UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        ++served_;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(conn.get(), buf, sizeof(buf), 0)) > 0) {
          ::send(conn.get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL);
        }
      }
    });
  }
  int served() const { return served_.load(); }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0};
  std::thread thread_;
};

std::string echo_once(uint16_t port, const std::string& text) {
  Conn conn = Conn::open("127.0.0.1", port);
  if (!conn.ok() || !conn.send_all(text)) {
    return "<connect failed>";
  }
  conn.shutdown_write();
  return conn.read_to_eof().value_or("<read failed>");
}

// Passive ejection is a guess from past failures. A backend that was ejected and is
// back must not be passed over while the client fails: once every eligible backend has
// refused, a connection tries the ejected ones before it gives up (panic is off here,
// so only this can save the request).
TEST(Ejection, AnEjectedBackendThatIsBackServesWhenEveryEligibleOneRefuses) {
  const std::string dead = "127.0.0.1:" + std::to_string(free_port());
  LateBackend late;
  auto last = std::make_unique<Backend>("c", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\n" +
             vip_block("test", port,
                       "policy = \"round_robin\"\nconnect_retries = 2\n"
                       "[vip.health]\ntype = \"none\"\neject_after_failures = 2\n"
                       "ejection_ms = 20000\nmax_ejection_ms = 20000\npanic_threshold = 0\n",
                       {{"a", dead}, {"b", late.address()}, {"c", last->address()}}));
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(echo_once(port, "x" + std::to_string(i)), "x" + std::to_string(i));
  }
  ASSERT_TRUE(wait_for_stat(lb, "vip.test.backend.b.ejections", 1));
  ASSERT_TRUE(wait_for_stat(lb, "vip.test.backend.a.ejections", 1));
  // b comes back (still ejected for 20 s), and c, the only eligible backend, dies.
  late.start();
  last.reset();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(echo_once(port, "y" + std::to_string(i)), "y" + std::to_string(i));
  }
  EXPECT_EQ(late.served(), 6);
  EXPECT_EQ(lb.stat("proxy.no_backend"), 0u);
}

// ---- 2. a policy switch while connects are pending ------------------------------------

// Two backends, one black-holing SYNs: connects to it are pending until their timeout.
// For every ordered pair of policies: start with the first, open clients (some wait on
// the black hole), switch to the second by reload while they wait. The pending connects
// then retry: with the policy and pool they started with, never a mix.
TEST(PolicySwitch, WhileConnectsArePendingEveryPairServesEveryClient) {
  SilentListener hole(/*black_hole_syns=*/true);
  Backend good("good", BackendMode::echo);
  const uint16_t port = free_port();
  auto config = [&](PolicyKind policy) {
    return "[daemon]\nworkers = 2\n" +
           vip_block("test", port,
                     "policy = \"" + std::string(to_string(policy)) +
                         "\"\nconnect_timeout_ms = 300\nconnect_retries = 1\n"
                         "[vip.health]\ntype = \"none\"\neject_after_failures = 0\n",
                     {{"hole", hole.address()}, {"good", good.address()}});
  };
  Ringlbd lb(config(PolicyKind::round_robin));
  for (PolicyKind from : kPolicies) {
    for (PolicyKind to : kPolicies) {
      if (from == to) {
        continue;
      }
      SCOPED_TRACE(std::string(to_string(from)) + " -> " + std::string(to_string(to)));
      reload(lb, config(from));
      std::vector<Conn> clients;
      for (int i = 0; i < 8; ++i) {
        clients.push_back(Conn::open("127.0.0.1", port));
        ASSERT_TRUE(clients.back().ok());
        ASSERT_TRUE(clients.back().send_all("ping"));
      }
      reload(lb, config(to));
      for (auto& c : clients) {
        EXPECT_EQ(c.read_exact(4, 3000).value_or("<lost>"), "ping");
      }
      ASSERT_TRUE(alive(lb)) << lb.log();
    }
  }
}

// The same through the control filesystem (vips/<vip>/policy), when it is mounted.
TEST(PolicySwitch, ThroughTheControlFileWhileConnectsArePending) {
  SilentListener hole(/*black_hole_syns=*/true);
  Backend good("good", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\n" +
             vip_block("test", port,
                       "policy = \"round_robin\"\nconnect_timeout_ms = 300\nconnect_retries = 1\n",
                       {{"hole", hole.address()}, {"good", good.address()}}));
  if (lb.log().find("control filesystem at") == std::string::npos) {
    GTEST_SKIP() << "the control filesystem needs root and /dev/fuse";
  }
  for (int round = 0; round < 3; ++round) {
    for (PolicyKind to : kPolicies) {
      std::vector<Conn> clients;
      for (int i = 0; i < 6; ++i) {
        clients.push_back(Conn::open("127.0.0.1", port));
        ASSERT_TRUE(clients.back().ok() && clients.back().send_all("ping"));
      }
      std::ofstream(lb.control_dir() + "/vips/test/policy") << to_string(to) << "\n";
      for (auto& c : clients) {
        EXPECT_EQ(c.read_exact(4, 3000).value_or("<lost>"), "ping") << to_string(to);
      }
      ASSERT_TRUE(alive(lb)) << lb.log();
    }
  }
}

// ---- 3. listeners of removed, renamed and moved VIPs ----------------------------------

// Connects to `port` and says whether it was refused (a reset of the SYN) within
// `limit`; a connect left hanging in a listen queue is not refused.
bool refused_within(uint16_t port, std::chrono::milliseconds limit) {
  const auto start = Clock::now();
  Conn c = Conn::open("127.0.0.1", port, static_cast<int>(limit.count()));
  if (c.ok()) {
    // Accepted by somebody: refused only if it is reset at once.
    char buf[1];
    return c.read_some(buf, 1, static_cast<int>(limit.count())) == -ECONNRESET;
  }
  return Clock::now() - start < limit;
}

TEST(RemovedVip, NewConnectsAreRefusedAtOnceWhileItsConnectionsFinish) {
  Backend a("a", BackendMode::echo);
  Backend b("b", BackendMode::echo);
  const uint16_t keep = free_port();
  const uint16_t gone = free_port();
  const std::string both = "[daemon]\nworkers = 2\n" +
                           vip_block("keep", keep, "", {{"a", a.address()}}) +
                           vip_block("gone", gone, "", {{"b", b.address()}});
  Ringlbd lb(both);
  Conn held = Conn::open("127.0.0.1", gone);
  ASSERT_TRUE(held.ok() && held.send_all("one"));
  ASSERT_EQ(held.read_exact(3).value_or("?"), "one");
  reload(lb, "[daemon]\nworkers = 2\n" + vip_block("keep", keep, "", {{"a", a.address()}}));
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(refused_within(gone, 500ms)) << "connect " << i << " to the removed vip";
  }
  // Its established connection finishes on its own.
  ASSERT_TRUE(held.send_all("two"));
  EXPECT_EQ(held.read_exact(3).value_or("?"), "two");
  held.shutdown_write();
  EXPECT_EQ(held.read_to_eof().value_or("?"), "");
  EXPECT_TRUE(refused_within(gone, 500ms));
  // The other VIP never noticed.
  Conn other = Conn::open("127.0.0.1", keep);
  ASSERT_TRUE(other.ok() && other.send_all("x"));
  EXPECT_EQ(other.read_exact(1).value_or("?"), "x");
}

// A removed VIP's connections get drain_timeout_ms to finish, then they are reset: a
// long-lived connection cannot keep a removed service alive for ever.
TEST(RemovedVip, ItsConnectionsAreResetAfterTheDrainTimeout) {
  Backend a("a", BackendMode::echo);
  const uint16_t gone = free_port();
  const uint16_t keep = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\ndrain_timeout_ms = 400\n" +
             vip_block("gone", gone, "", {{"a", a.address()}}) +
             vip_block("keep", keep, "", {{"a", a.address()}}));
  Conn held = Conn::open("127.0.0.1", gone);
  ASSERT_TRUE(held.ok() && held.send_all("x"));
  ASSERT_EQ(held.read_exact(1).value_or("?"), "x");
  Conn other = Conn::open("127.0.0.1", keep);
  ASSERT_TRUE(other.ok() && other.send_all("y"));
  ASSERT_EQ(other.read_exact(1).value_or("?"), "y");
  const auto removed = Clock::now();
  reload(lb, "[daemon]\nworkers = 1\ndrain_timeout_ms = 400\n" +
                 vip_block("keep", keep, "", {{"a", a.address()}}));
  ASSERT_TRUE(held.send_all("z"));  // still served during the drain
  EXPECT_EQ(held.read_exact(1).value_or("?"), "z");
  char buf[4];
  EXPECT_EQ(held.read_some(buf, sizeof(buf), 3000), -ECONNRESET);
  const auto waited = Clock::now() - removed;
  EXPECT_GE(waited, 350ms);
  EXPECT_LT(waited, 1500ms);
  EXPECT_EQ(lb.worker_total("drain_closes"), 1u);
  // The other VIP's connection is untouched.
  ASSERT_TRUE(other.send_all("w"));
  EXPECT_EQ(other.read_exact(1).value_or("?"), "w");
}

TEST(RemovedVip, RenamedOnTheSameAddressTheNewVipTakesEveryClient) {
  Backend old_backend("old", BackendMode::name);
  Backend new_backend("new", BackendMode::name);
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 2\n" +
             vip_block("before", port, "", {{"old", old_backend.address()}}));
  Conn held = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held.read_exact(4).value_or("?"), "old\n");
  reload(lb, "[daemon]\nworkers = 2\n" +
                 vip_block("after", port, "", {{"new", new_backend.address()}}));
  int answered_by_new = 0;
  for (int i = 0; i < 40; ++i) {
    Conn c = Conn::open("127.0.0.1", port, 1000);
    answered_by_new += c.ok() && c.read_exact(4, 1000).value_or("?") == "new\n";
  }
  EXPECT_EQ(answered_by_new, 40) << "a share of the clients went to the renamed vip's listener";
  ASSERT_TRUE(held.send_all("still"));
  EXPECT_EQ(held.read_exact(5).value_or("?"), "still");
}

TEST(RemovedVip, MovedToAnotherPortItsOldPortRefuses) {
  Backend a("a", BackendMode::echo);
  const uint16_t first = free_port();
  const uint16_t second = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\n" + vip_block("web", first, "", {{"a", a.address()}}));
  Conn held = Conn::open("127.0.0.1", first);
  ASSERT_TRUE(held.ok() && held.send_all("x"));
  ASSERT_EQ(held.read_exact(1).value_or("?"), "x");
  reload(lb, "[daemon]\nworkers = 1\n" + vip_block("web", second, "", {{"a", a.address()}}));
  EXPECT_TRUE(refused_within(first, 500ms));
  Conn moved = Conn::open("127.0.0.1", second);
  ASSERT_TRUE(moved.ok() && moved.send_all("y"));
  EXPECT_EQ(moved.read_exact(1).value_or("?"), "y");
}

// ---- 4. closes that would truncate ----------------------------------------------------

// A backend that, per connection, writes `bytes` of stream `seed` as fast as the
// connection takes them, then keeps it open, and records how the connection ended.
class WritingBackend {
 public:
  WritingBackend(uint64_t bytes, uint64_t seed) : bytes_(bytes), seed_(seed) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(address);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), len) != 0 ||
        ::listen(listener_.get(), 16) != 0) {
      throw std::runtime_error("writing backend: bind/listen failed");
    }
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &len);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~WritingBackend() {
    stop_ = true;
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // How the one connection ended: 0 a FIN, -ECONNRESET a reset, 1 still open.
  int end() const { return end_.load(); }
  uint64_t written() const { return written_.load(); }

 private:
  void serve() {
    pollfd p{.fd = listener_.get(), .events = POLLIN, .revents = 0};
    while (!stop_ && ::poll(&p, 1, 50) == 0) {
    }
    if (stop_) {
      return;
    }
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    std::vector<uint8_t> chunk(1 << 16);
    uint64_t sent = 0;
    while (!stop_) {
      short events = POLLIN;
      if (sent < bytes_) {
        events |= POLLOUT;
      }
      pollfd c{.fd = conn.get(), .events = events, .revents = 0};
      ::poll(&c, 1, 50);
      if ((c.revents & POLLOUT) && sent < bytes_) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes_ - sent));
        fill_stream(seed_, sent, chunk.data(), n);
        const ssize_t w = ::send(conn.get(), chunk.data(), n, MSG_NOSIGNAL);
        if (w > 0) {
          sent += static_cast<uint64_t>(w);
          written_ = sent;
        } else if (w < 0 && errno != EAGAIN) {
          end_ = -errno;  // the error is reported once: a later recv would see a plain end
          return;
        }
      }
      if (c.revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[4096];
        const ssize_t r = ::recv(conn.get(), buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          end_ = r == 0 ? 0 : -errno;
          return;
        }
      }
    }
  }

  uint64_t bytes_;
  uint64_t seed_;
  uint16_t port_ = 0;
  UniqueFd listener_;
  std::atomic<bool> stop_{false};
  std::atomic<int> end_{1};
  std::atomic<uint64_t> written_{0};
  std::thread thread_;
};

// Reads everything the connection still delivers, checking each byte; returns the last
// read's result (0: EOF, -errno) and sets `received`.
ssize_t drain(Conn& conn, uint64_t seed, uint64_t& received) {
  std::vector<uint8_t> buf(1 << 16);
  std::vector<uint8_t> expected(1 << 16);
  while (true) {
    const ssize_t r = conn.read_some(buf.data(), buf.size(), 3000);
    if (r <= 0) {
      return r;
    }
    fill_stream(seed, received, expected.data(), static_cast<size_t>(r));
    if (std::memcmp(buf.data(), expected.data(), static_cast<size_t>(r)) != 0) {
      ADD_FAILURE() << "corrupt byte near offset " << received;
      return -EIO;
    }
    received += static_cast<uint64_t>(r);
  }
}

UniqueFd small_receive_buffer_socket() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int size = 4096;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  return fd;
}

// The idle timeout fires while bytes the client has not read are parked in ringlbd
// (the client stopped reading): the close discards them, so both peers get a reset.
TEST(Truncation, IdleTimeoutThatDiscardsParkedBytesResetsBothPeers) {
  // Far more than every buffer on the path can hold: with tcp_rmem's maximum at 32 MiB
  // (Linux 6.x), 16 MiB sometimes fit whole and the test had nothing to discard.
  WritingBackend backend(uint64_t{128} << 20, 77);
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\n" +
             vip_block("test", port, "idle_timeout_ms = 300\n", {{"w", backend.address()}}));
  Conn client = Conn::open("127.0.0.1", port);  // and never reads
  ASSERT_TRUE(client.ok());
  // Everything fills up (client buffers, ringlbd's pipe), nothing moves: idle.
  std::this_thread::sleep_for(1500ms);
  ASSERT_LT(backend.written(), uint64_t{128} << 20) << "the stream should not fit in the buffers";
  uint64_t received = 0;
  EXPECT_EQ(drain(client, 77, received), -ECONNRESET)
      << "a clean EOF after " << received << " of " << backend.written()
      << " bytes: the idle close discarded the rest silently";
  EXPECT_LT(received, backend.written());
  const auto deadline = Clock::now() + 2s;
  while (backend.end() == 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(backend.end(), -ECONNRESET) << "the backend must learn its bytes were not delivered";
  EXPECT_EQ(lb.worker_total("idle_timeouts"), 1u);
}

// The age limit passes while the client (a 4 KiB receive buffer) has not yet read what
// ringlbd sent: 12 KiB, small enough to sit in socket send queues only (no pipe is
// used), unacknowledged. The age close must wait
// for them (no FIN while bytes are in flight); when the client reads, it gets every byte
// and then the FIN, and so does the backend.
TEST(Truncation, AgeLimitWaitsForUnacknowledgedBytesThenClosesWithFins) {
  WritingBackend backend(12 << 10, 5);
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\ndrain_timeout_ms = 5000\n" +
             vip_block("test", port, "max_connection_age_ms = 200\n", {{"w", backend.address()}}));
  UniqueFd raw = small_receive_buffer_socket();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(raw.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  std::this_thread::sleep_for(800ms);  // well past the age limit, nothing read
  EXPECT_EQ(backend.end(), 1) << "ringlbd closed toward the backend while bytes were unread";
  // Now read: every byte, then a clean EOF.
  std::vector<uint8_t> buf(1 << 16);
  std::vector<uint8_t> expected(1 << 16);
  uint64_t received = 0;
  ssize_t r;
  while ((r = ::recv(raw.get(), buf.data(), buf.size(), 0)) > 0) {
    fill_stream(5, received, expected.data(), static_cast<size_t>(r));
    ASSERT_EQ(std::memcmp(buf.data(), expected.data(), static_cast<size_t>(r)), 0);
    received += static_cast<uint64_t>(r);
  }
  EXPECT_EQ(r, 0) << "expected a FIN after the last byte, got " << std::strerror(errno);
  EXPECT_EQ(received, uint64_t{12} << 10);
  const auto deadline = Clock::now() + 2s;
  while (backend.end() == 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(backend.end(), 0);
  EXPECT_EQ(lb.worker_total("age_closes"), 1u);
}

// The same, but the client never reads: after the documented bound (drain_timeout_ms)
// the age close gives up waiting and resets both peers.
TEST(Truncation, AgeLimitResetsBothPeersWhenBytesStayInFlightPastTheBound) {
  WritingBackend backend(12 << 10, 6);
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\ndrain_timeout_ms = 600\n" +
             vip_block("test", port, "max_connection_age_ms = 200\n", {{"w", backend.address()}}));
  UniqueFd raw = small_receive_buffer_socket();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(raw.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const auto deadline = Clock::now() + 3s;
  while (backend.end() == 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(backend.end(), -ECONNRESET);
  std::vector<uint8_t> buf(1 << 16);
  ssize_t r;
  while ((r = ::recv(raw.get(), buf.data(), buf.size(), 0)) > 0) {
  }
  EXPECT_EQ(r, -1);
  EXPECT_EQ(errno, ECONNRESET) << "the client must see a reset, not a clean end";
}

// A request the backend never answers (it accepts and stays silent): the age limit
// passes with nothing in flight, but a FIN now would tell the client that the answer
// ended, empty. Found by the chaos test (seed 2: a client half-closed its request to a
// stopped backend and read a clean EOF). The close must be a reset.
TEST(Truncation, AgeLimitNeverEndsAnUnansweredRequestWithAFin) {
  SilentListener silent(/*black_hole_syns=*/false);
  const uint16_t port = free_port();
  Ringlbd lb("[daemon]\nworkers = 1\ndrain_timeout_ms = 500\n" +
             vip_block("test", port, "max_connection_age_ms = 200\n", {{"s", silent.address()}}));
  Conn client = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(client.ok() && client.send_all("E\nhello"));
  client.shutdown_write();
  char buf[16];
  EXPECT_EQ(client.read_some(buf, sizeof(buf), 3000), -ECONNRESET)
      << "a clean end of an answer that never came";
  EXPECT_EQ(lb.worker_total("age_resets"), 1u);
}

// The same for the idle timeout: a request left unanswered for idle_timeout_ms ends in a
// reset, while a connection idle after its answer ends with a FIN.
TEST(Truncation, IdleTimeoutNeverEndsAnUnansweredRequestWithAFin) {
  SilentListener silent(/*black_hole_syns=*/false);
  Backend echo("e", BackendMode::echo);
  const uint16_t port = free_port();
  const uint16_t answered_port = free_port();
  Ringlbd lb(
      "[daemon]\nworkers = 1\n" +
      vip_block("silent", port, "idle_timeout_ms = 300\n", {{"s", silent.address()}}) +
      vip_block("answered", answered_port, "idle_timeout_ms = 300\n", {{"e", echo.address()}}));
  Conn waiting = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(waiting.ok() && waiting.send_all("request"));
  Conn answered = Conn::open("127.0.0.1", answered_port);
  ASSERT_TRUE(answered.ok() && answered.send_all("request"));
  ASSERT_EQ(answered.read_exact(7).value_or("?"), "request");
  char buf[16];
  EXPECT_EQ(waiting.read_some(buf, sizeof(buf), 3000), -ECONNRESET);
  EXPECT_EQ(answered.read_some(buf, sizeof(buf), 3000), 0) << "idle after its answer: a FIN";
  EXPECT_EQ(lb.worker_total("idle_timeouts"), 2u);
}

}  // namespace
}  // namespace ringlb::test
