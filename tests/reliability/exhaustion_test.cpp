// Resource faults: descriptors exhausted (RLIMIT_NOFILE) and slowloris (thousands of idle
// or trickling clients). ringlbd must keep serving, stay cheap while it cannot accept,
// bound its memory, free idle clients on time, and give its descriptors back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../proxy/harness.h"
#include "proc.h"

namespace ringlb::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool echo_once(Conn& conn, const std::string& text, int timeout_ms) {
  return conn.ok() && conn.send_all(text, timeout_ms) &&
         conn.read_exact(text.size(), timeout_ms).value_or("") == text;
}

// Waits until `done` holds or `limit` passes; returns whether it held.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

TEST(Exhaustion, NoDescriptorsLeftCostsNoCpuAndServiceRecovers) {
  raise_fd_limit();
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a}, "", "workers = 1\n"), {}, 64);
  const size_t baseline = lb.open_fds();
  // Connections until the first that is not served: the limit is reached.
  std::vector<Conn> held;
  std::vector<Conn> knocking;
  while (held.size() < 60) {
    Conn conn = Conn::open("127.0.0.1", port, 500);
    if (!echo_once(conn, "x", 500)) {
      knocking.push_back(std::move(conn));
      break;
    }
    held.push_back(std::move(conn));
  }
  const size_t served = held.size();
  ASSERT_GT(served, 3u);
  ASSERT_EQ(knocking.size(), 1u) << "the descriptor limit was never reached";
  // Exhausted. Clients keep knocking for 3 s; the daemon must back off, not spin on
  // accept (a busy loop would burn a core here).
  const uint64_t cpu_before = cpu_ms(lb.pid());
  const auto start = Clock::now();
  while (Clock::now() - start < 3s) {
    knocking.push_back(Conn::open("127.0.0.1", port, 100));
    std::this_thread::sleep_for(100ms);
  }
  const uint64_t cpu_used = cpu_ms(lb.pid()) - cpu_before;
  // Refused cleanly: a knocking client is closed or reset, or waits in the backlog; it is
  // never half-served.
  int refused = 0;
  int waiting = 0;
  for (auto& conn : knocking) {
    char byte;
    const ssize_t r = conn.ok() ? conn.read_some(&byte, 1, 50) : 0;
    EXPECT_LE(r, 0) << "a refused client got bytes";
    refused += r == 0 || r == -ECONNRESET ? 1 : 0;
    waiting += r == -ETIMEDOUT || r == -EAGAIN ? 1 : 0;
  }
  std::cout << "ringlbd CPU while exhausted: " << cpu_used << " ms in 3 s; of " << knocking.size()
            << " clients knocking, " << refused << " refused, " << waiting << " waiting\n";
  RecordProperty("cpu_ms_while_exhausted", static_cast<int>(cpu_used));
  EXPECT_LT(cpu_used, 300u) << "more than 10% of a core while it cannot accept";
  // What was served before the limit still works.
  size_t still = 0;
  for (auto& conn : held) {
    still += echo_once(conn, "y", 500) ? 1 : 0;
  }
  EXPECT_EQ(still, served);
  // Descriptors free up: service comes back, and the count returns to its baseline.
  held.clear();
  knocking.clear();
  EXPECT_TRUE(eventually(
      [&] {
        Conn conn = Conn::open("127.0.0.1", port, 500);
        return echo_once(conn, "z", 500);
      },
      5s))
      << "no recovery: " << lb.log();
  EXPECT_TRUE(eventually([&] { return lb.open_fds() == baseline; }, 5s))
      << "descriptors: " << lb.open_fds() << ", baseline " << baseline;
  // Read only now: while descriptors are exhausted ringlbd cannot open its stats file.
  EXPECT_GT(lb.worker_total("accept_errors") + lb.worker_total("connect_errors"), 0u);
}

// --- slowloris ---------------------------------------------------------------------------

// What the client process is asked to do, and what it reports.
struct SlowClientsOrder {
  uint16_t port;
  uint32_t count;
  uint32_t wave;           // connections opened at once
  uint32_t trickle_every;  // every n-th connection sends a byte each trickle_ms
  uint32_t trickle_ms;
  uint32_t trickle_for_ms;
  uint32_t wait_close_ms;  // then how long to wait for ringlbd to close them all
};
struct SlowClientsReport {
  uint32_t connected = 0;
  uint32_t closed_while_trickling = 0;  // by ringlbd's idle timeout
  uint32_t trickling_alive_at_end = 0;  // trickling clients still open when trickling ended
  uint32_t closed = 0;                  // in the end
};

// The clients live in their own process, forked before this one has threads: their
// descriptors do not count against the test's RLIMIT_NOFILE (ringlbd's and the
// backend's do). Plain syscalls only.
void slow_clients_main(int control) {
  SlowClientsOrder order{};
  if (::read(control, &order, sizeof(order)) != sizeof(order)) {
    ::_exit(1);
  }
  SlowClientsReport report;
  std::vector<pollfd> fds;
  fds.reserve(order.count);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(order.port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // In waves, as a ramping attacker does: a wave's handshakes finish before the next
  // starts, so the test's own backend (one thread, accept queue capped by somaxconn)
  // is never handed more than a few waves at once. As one burst, on a slower CI VM, 99
  // of 9500 never reached the backend: most likely an accept queue overflowed (the
  // failure message shows the kernel's listen-overflow count to tell), and a client
  // that sends nothing never repairs a handshake whose last ACK was dropped.
  const auto connect_deadline = Clock::now() + 30s;
  std::vector<bool> up;
  for (uint32_t i = 0; i < order.count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    // A few source addresses, so ephemeral ports never run out.
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002 + i % 4);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0 ||
        (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0 &&
         errno != EINPROGRESS)) {
      break;
    }
    fds.push_back(pollfd{.fd = fd, .events = POLLOUT, .revents = 0});
    up.push_back(false);
    if (fds.size() % order.wave != 0 && i + 1 < order.count) {
      continue;
    }
    // Connected: every socket writable without error.
    while (report.connected < fds.size() && Clock::now() < connect_deadline) {
      ::poll(fds.data(), fds.size(), 100);
      for (size_t j = 0; j < fds.size(); ++j) {
        if (!up[j] && (fds[j].revents & POLLOUT) && !(fds[j].revents & (POLLERR | POLLHUP))) {
          up[j] = true;
          ++report.connected;
          // The start of a request, then nothing (the echo is read in the watch below).
          // It also makes the handshake whole: had ringlbd's kernel dropped the final
          // ACK (an accept queue full for a moment, or a SYN cookie), a client that never
          // sends would stay half-open for ever, while this byte is retransmitted.
          (void)!::send(fds[j].fd, "G", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          fds[j].events = 0;
        }
      }
    }
  }
  for (auto& p : fds) {
    p.events = POLLIN;
  }
  (void)!::write(control, &report, sizeof(report));
  // Trickle, and watch ringlbd close the idle ones.
  std::vector<bool> closed(fds.size(), false);
  auto watch = [&](int timeout_ms) {
    ::poll(fds.data(), fds.size(), timeout_ms);
    char buf[256];
    for (size_t i = 0; i < fds.size(); ++i) {
      if (closed[i] || !(fds[i].revents & (POLLIN | POLLERR | POLLHUP))) {
        continue;
      }
      const ssize_t r = ::recv(fds[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN)) {
        closed[i] = true;
        ++report.closed;
        fds[i].events = 0;
      }
    }
  };
  const auto trickle_end = Clock::now() + std::chrono::milliseconds(order.trickle_for_ms);
  auto next_trickle = Clock::now();
  while (Clock::now() < trickle_end) {
    if (Clock::now() >= next_trickle) {
      for (size_t i = 0; i < fds.size(); i += order.trickle_every) {
        if (!closed[i]) {
          (void)!::send(fds[i].fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      }
      next_trickle += std::chrono::milliseconds(order.trickle_ms);
    }
    watch(50);
  }
  report.closed_while_trickling = report.closed;
  for (size_t i = 0; i < fds.size(); i += order.trickle_every) {
    report.trickling_alive_at_end += closed[i] ? 0 : 1;
  }
  const auto close_deadline = Clock::now() + std::chrono::milliseconds(order.wait_close_ms);
  while (report.closed < fds.size() && Clock::now() < close_deadline) {
    watch(100);
  }
  (void)!::write(control, &report, sizeof(report));
  ::_exit(0);
}

// The client process, killed and reaped when the test ends (also on failure).
class SlowClients {
 public:
  SlowClients() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      throw std::runtime_error("socketpair failed");
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(pair[0]);
      slow_clients_main(pair[1]);
    }
    ::close(pair[1]);
    control_ = UniqueFd(pair[0]);
  }
  ~SlowClients() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  void start(const SlowClientsOrder& order) {
    (void)!::write(control_.get(), &order, sizeof(order));
  }
  // The next report, or nullopt after `timeout_ms`.
  std::optional<SlowClientsReport> report(int timeout_ms) {
    pollfd p{.fd = control_.get(), .events = POLLIN, .revents = 0};
    SlowClientsReport r;
    if (::poll(&p, 1, timeout_ms) != 1 || ::read(control_.get(), &r, sizeof(r)) != sizeof(r)) {
      return std::nullopt;
    }
    return r;
  }

 private:
  pid_t pid_ = -1;
  UniqueFd control_;
};

// Latency of one short request on a new connection, in microseconds; -1 on failure.
int64_t request_us(uint16_t port) {
  const auto start = Clock::now();
  Conn conn = Conn::open("127.0.0.1", port, 2000);
  if (!echo_once(conn, std::string(100, 'r'), 2000)) {
    return -1;
  }
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
}

// p99 of `n` sequential requests in microseconds; failures count as 10 s.
int64_t p99_us(uint16_t port, int n) {
  std::vector<int64_t> samples;
  for (int i = 0; i < n; ++i) {
    const int64_t us = request_us(port);
    samples.push_back(us < 0 ? 10'000'000 : us);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() * 99 / 100];
}

// The kernel's count of connections dropped because an accept queue was full.
uint64_t listen_overflows() {
  std::ifstream in("/proc/net/netstat");
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    std::istringstream n(names), v(values);
    std::string name, value;
    while (n >> name && v >> value) {
      if (name == "ListenOverflows") {
        return std::stoull(value);
      }
    }
  }
  return 0;
}

// ringlbd's connection counters (for a failure message): where connections went.
std::string connection_stats(Ringlbd& lb) {
  std::string out;
  for (const auto& [name, value] : lb.stats()) {
    if (value != 0 && name.rfind("worker.", 0) == 0) {
      out += "\n  " + name + " " + std::to_string(value);
    }
  }
  return out;
}

TEST(Slowloris, ThousandsOfIdleClientsAreBoundedFreedAndDoNotSlowOthers) {
  SlowClients clients;  // forked first, while this process has no threads
  raise_fd_limit();
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  // ringlbd holds two sockets per client (client and backend side); leave room for the
  // rest. The backend in this process holds one per client.
  const uint32_t count = static_cast<uint32_t>(
      std::min<rlim_t>(20000, limit.rlim_cur > 2000 ? (limit.rlim_cur - 1000) / 2 : 0));
  if (count < 1000) {
    GTEST_SKIP() << "RLIMIT_NOFILE " << limit.rlim_cur << " allows too few clients";
  }
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a}, "idle_timeout_ms = 8000\n"));
  // Warm up (first connections allocate per-worker state), then take the baselines.
  const int64_t p99_idle = p99_us(port, 200);
  std::this_thread::sleep_for(300ms);
  const size_t fds_before = lb.open_fds();
  const uint64_t rss_before = rss_kib(lb.pid());

  const uint64_t overflows_before = listen_overflows();
  const auto loris_start = Clock::now();
  clients.start(SlowClientsOrder{.port = port,
                                 .count = count,
                                 .wave = 500,
                                 .trickle_every = 20,
                                 .trickle_ms = 500,
                                 .trickle_for_ms = 18000,
                                 .wait_close_ms = 15000});
  const auto connected = clients.report(40000);
  ASSERT_TRUE(connected.has_value()) << "the client process did not report";
  ASSERT_EQ(connected->connected, count);
  ASSERT_TRUE(eventually([&] { return a.connections() >= count; }, 20s))
      << "backend saw " << a.connections() << " of " << count << "; accept queue overflows "
      << listen_overflows() - overflows_before << "; ringlbd: " << lb.log() << connection_stats(lb);
  const auto all_up = Clock::now() - loris_start;
  ASSERT_LT(all_up, 7s) << "too slow to set up: the idle timeout would start closing";
  const uint64_t rss_loaded = rss_kib(lb.pid());
  const size_t fds_loaded = lb.open_fds();
  const int64_t p99_loaded = p99_us(port, 200);
  const double per_connection =
      static_cast<double>(rss_loaded - std::min(rss_before, rss_loaded)) * 1024.0 / count;

  const auto done = clients.report(40000);
  ASSERT_TRUE(done.has_value()) << "the client process did not finish";
  std::cout << count << " slow clients (all up in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(all_up).count()
            << " ms): ringlbd RSS " << rss_before << " -> " << rss_loaded << " KiB ("
            << static_cast<int>(per_connection) << " bytes per client), fds " << fds_before
            << " -> " << fds_loaded << "; p99 of a normal request " << p99_idle << " us alone, "
            << p99_loaded << " us among them; closed by the idle timeout "
            << done->closed_while_trickling << " while " << count / 20 << " trickled, "
            << done->closed << " in the end\n";
  RecordProperty("clients", static_cast<int>(count));
  RecordProperty("bytes_per_client", static_cast<int>(per_connection));
  RecordProperty("p99_us_alone", static_cast<int>(p99_idle));
  RecordProperty("p99_us_among_slow_clients", static_cast<int>(p99_loaded));

  EXPECT_GE(fds_loaded, fds_before + 2 * count) << "the clients were not all held";
  EXPECT_LT(per_connection, 16 * 1024.0) << "memory per idle client";
  EXPECT_LT(p99_loaded, 200'000) << "a normal client's p99 among slow clients";
  // The idle ones went at the idle timeout while the trickling ones were kept, then
  // those went too once they stopped.
  const uint32_t trickling = (count + 19) / 20;
  EXPECT_EQ(done->closed_while_trickling, count - trickling);
  EXPECT_EQ(done->trickling_alive_at_end, trickling);
  EXPECT_EQ(done->closed, count);
  EXPECT_TRUE(eventually([&] { return lb.open_fds() <= fds_before; }, 5s))
      << "descriptors: " << lb.open_fds() << ", baseline " << fds_before;
  std::cout << "after: RSS " << rss_kib(lb.pid()) << " KiB, fds " << lb.open_fds() << "\n";
}

}  // namespace
}  // namespace ringlb::test
