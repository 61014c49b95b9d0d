// A bounded soak run of ringlbd: short requests and bulk streams (every byte checked)
// while backends are killed and restarted, weights change through the control
// filesystem, and the config is reloaded (good and bad files). Afterwards: no corrupted
// byte, a clean final round, ringlbd's descriptors back at their baseline and its memory
// near it. RINGLB_SOAK_SECONDS sets the length (90 s by default, for CI);
// RINGLB_SOAK_DEBUG=1 prints ringlbd's counters and log at the end.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "../proxy/harness.h"
#include "proc.h"

namespace ringlb::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

enum class Outcome { ok, failed, corrupt };

// One connection: sends `size` bytes of stream `seed`, half-closes, and must read the
// same bytes back, then EOF. A reset or an early EOF is a failure (a backend died); a
// wrong or extra byte is corruption.
Outcome echo_exchange(uint16_t port, uint64_t seed, uint64_t size, int timeout_ms) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return Outcome::failed;
  }
  std::array<uint8_t, 1 << 16> out;
  std::array<uint8_t, 1 << 16> in;
  std::array<uint8_t, 1 << 16> expected;
  uint64_t sent = 0;
  uint64_t received = 0;
  bool write_done = false;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    pollfd p{.fd = fd.get(),
             .events = static_cast<short>(POLLIN | (write_done ? 0 : POLLOUT)),
             .revents = 0};
    ::poll(&p, 1, 100);
    if ((p.revents & POLLOUT) && !write_done) {
      while (sent < size) {
        const size_t chunk = static_cast<size_t>(std::min<uint64_t>(out.size(), size - sent));
        fill_stream(seed, sent, out.data(), chunk);
        const ssize_t w = ::send(fd.get(), out.data(), chunk, MSG_NOSIGNAL);
        if (w <= 0) {
          if (w < 0 && errno != EAGAIN) {
            return Outcome::failed;
          }
          break;
        }
        sent += static_cast<uint64_t>(w);
      }
      if (sent == size) {
        ::shutdown(fd.get(), SHUT_WR);
        write_done = true;
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      while (true) {
        const ssize_t r = ::recv(fd.get(), in.data(), in.size(), MSG_DONTWAIT);
        if (r > 0) {
          const auto got = static_cast<size_t>(r);
          if (received + got > size) {
            return Outcome::corrupt;
          }
          fill_stream(seed, received, expected.data(), got);
          if (std::memcmp(in.data(), expected.data(), got) != 0) {
            return Outcome::corrupt;
          }
          received += got;
          continue;
        }
        if (r == 0) {
          return received == size && write_done ? Outcome::ok : Outcome::failed;
        }
        if (errno != EAGAIN) {
          return Outcome::failed;
        }
        break;
      }
    }
  }
  return Outcome::failed;
}

struct Tally {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> corrupt{0};
  std::atomic<uint64_t> bytes{0};
  void add(Outcome o, uint64_t size) {
    (o == Outcome::ok ? ok : o == Outcome::failed ? failed : corrupt).fetch_add(1);
    bytes += o == Outcome::ok ? size : 0;
  }
};

// The VIP's policy: every config the soak writes takes the next of the five, so kills
// and restarts meet each of them. RINGLB_SOAK_POLICY pins one.
std::string policy(size_t config_number) {
  const char* env = std::getenv("RINGLB_SOAK_POLICY");
  if (env != nullptr && *env != '\0') {
    return env;
  }
  constexpr const char* kPolicies[] = {"weighted", "least_request", "round_robin", "random",
                                       "ip_hash"};
  return kPolicies[config_number % 5];
}

// The backends of the soak: slots that are killed and restarted (on a new port).
class Pool {
 public:
  explicit Pool(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      slots_.push_back(std::make_unique<Backend>("b" + std::to_string(i), BackendMode::echo));
      addresses_.push_back(slots_.back()->address());
    }
  }
  // The config: every slot, a dead one at its last address (connects there are refused
  // and retried on the next backend).
  std::string config(uint16_t port, const std::vector<uint32_t>& weights) {
    std::string text =
        "[daemon]\nworkers = 2\ndrain_timeout_ms = 2000\n[[vip]]\nname = \"soak\"\n"
        "listen = \"127.0.0.1:" +
        std::to_string(port) + "\"\npolicy = \"" + policy(configs_++) +
        "\"\nconnect_timeout_ms = 500\nconnect_retries = 2\n"
        "idle_timeout_ms = 10000\n";
    for (size_t i = 0; i < addresses_.size(); ++i) {
      text += "[[vip.backend]]\nname = \"b" + std::to_string(i) + "\"\naddress = \"" +
              addresses_[i] + "\"\nweight = " + std::to_string(weights[i]) + "\n";
    }
    return text;
  }
  size_t alive() const {
    size_t n = 0;
    for (const auto& s : slots_) {
      n += s ? 1 : 0;
    }
    return n;
  }
  // Resets every connection of backend i, then stops it (a crash, seen from outside).
  void kill(size_t i) {
    slots_[i]->reset_all();
    std::this_thread::sleep_for(20ms);
    slots_[i].reset();
  }
  void restart(size_t i) {
    slots_[i] = std::make_unique<Backend>("b" + std::to_string(i), BackendMode::echo);
    addresses_[i] = slots_[i]->address();
  }
  bool is_alive(size_t i) const { return slots_[i] != nullptr; }
  size_t size() const { return slots_.size(); }

 private:
  std::vector<std::unique_ptr<Backend>> slots_;
  std::vector<std::string> addresses_;
  size_t configs_ = 0;  // configs written: the next one's policy
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

TEST(Soak, MixedTrafficThroughKillsReloadsAndWeightChangesLosesNoByteAndLeaksNothing) {
  raise_fd_limit();
  const char* env = std::getenv("RINGLB_SOAK_SECONDS");
  const int seconds = env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 90;
  const uint16_t port = free_port();
  Pool pool(3);
  std::vector<uint32_t> weights = {3, 2, 1};
  Ringlbd lb(pool.config(port, weights));
  const bool control = lb.log().find("control filesystem at") != std::string::npos;

  // Warm up, then take the baselines (first connections allocate per-worker state).
  Tally warmup;
  for (int i = 0; i < 50; ++i) {
    warmup.add(echo_exchange(port, 1000 + i, i % 5 == 0 ? 1 << 20 : 200, 10000), 0);
  }
  ASSERT_EQ(warmup.ok.load(), 50u) << lb.log();
  std::this_thread::sleep_for(500ms);
  const size_t fds_before = lb.open_fds();
  const uint64_t rss_before = rss_kib(lb.pid());

  Tally shorts;
  Tally bulks;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      const bool bulk = t >= 4;  // 4 threads of short requests, 2 of bulk streams
      std::mt19937_64 rng(t);
      for (uint64_t n = 0; !stop; ++n) {
        const uint64_t size = bulk ? (1 << 20) + rng() % (3 << 20) : 1 + rng() % 2000;
        (bulk ? bulks : shorts)
            .add(echo_exchange(port, (uint64_t(t) << 40) + n, size, 20000), size);
      }
    });
  }

  // Chaos: every ~0.7 s one of kill, restart (a reload with its new address), weight
  // change (control file, or a reload without the control filesystem), bad reload.
  std::mt19937 rng(42);
  size_t kills = 0;
  size_t restarts = 0;
  size_t weight_changes = 0;
  size_t reloads = 0;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    std::this_thread::sleep_for(700ms);
    const size_t i = rng() % pool.size();
    switch (rng() % 4) {
      case 0:
        if (pool.is_alive(i) && pool.alive() > 1) {
          pool.kill(i);
          ++kills;
        }
        break;
      case 1:
        if (!pool.is_alive(i)) {
          pool.restart(i);
          lb.write_config(pool.config(port, weights));
          lb.signal(SIGHUP);
          ++restarts;
          ++reloads;
        }
        break;
      case 2:
        weights[i] = 1 + rng() % 10;
        if (control) {
          write_file(lb.control_dir() + "/vips/soak/backends/b" + std::to_string(i) + "/weight",
                     std::to_string(weights[i]) + "\n");
        } else {
          lb.write_config(pool.config(port, weights));
          lb.signal(SIGHUP);
          ++reloads;
        }
        ++weight_changes;
        break;
      default:
        // A bad file is refused and changes nothing; the good one goes back.
        lb.write_config("[[vip]]\nname = \"broken\"\n");
        lb.signal(SIGHUP);
        std::this_thread::sleep_for(100ms);
        lb.write_config(pool.config(port, weights));
        lb.signal(SIGHUP);
        reloads += 2;
        break;
    }
  }
  stop = true;
  for (auto& c : clients) {
    c.join();
  }
  // Everything back up: a final round must be clean.
  for (size_t i = 0; i < pool.size(); ++i) {
    if (!pool.is_alive(i)) {
      pool.restart(i);
    }
  }
  lb.write_config(pool.config(port, weights));
  lb.signal(SIGHUP);
  std::this_thread::sleep_for(300ms);
  Tally final_round;
  for (int i = 0; i < 60; ++i) {
    final_round.add(echo_exchange(port, 5000 + i, i % 6 == 0 ? 2 << 20 : 500, 10000), 0);
  }
  ASSERT_EQ(::kill(lb.pid(), 0), 0) << "ringlbd died: " << lb.log();

  // Idle again: descriptors back at the baseline (pipes pooled during bursts are
  // released), memory near it.
  const bool fds_back = [&] {
    const auto deadline = Clock::now() + 10s;
    while (lb.open_fds() > fds_before && Clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    return lb.open_fds() <= fds_before;
  }();
  const uint64_t rss_after = rss_kib(lb.pid());
  std::cout << seconds << " s soak: short " << shorts.ok << " ok / " << shorts.failed
            << " failed, bulk " << bulks.ok << " ok / " << bulks.failed << " failed ("
            << (shorts.bytes + bulks.bytes) / (1 << 20) << " MiB checked), corrupt "
            << shorts.corrupt + bulks.corrupt << "; " << kills << " kills, " << restarts
            << " restarts, " << weight_changes << " weight changes, " << reloads << " reloads; fds "
            << fds_before << " -> " << lb.open_fds() << ", RSS " << rss_before << " -> "
            << rss_after << " KiB\n";
  if (std::getenv("RINGLB_SOAK_DEBUG") != nullptr) {
    for (const auto& [name, value] : lb.stats()) {
      if (value != 0 && name.find("latency") == std::string::npos) {
        std::cout << name << " " << value << "\n";
      }
    }
    std::cout << lb.log();
  }
  RecordProperty("short_ok", static_cast<int>(shorts.ok));
  RecordProperty("bulk_ok", static_cast<int>(bulks.ok));
  RecordProperty("failed", static_cast<int>(shorts.failed + bulks.failed));
  RecordProperty("rss_growth_kib", static_cast<int>(rss_after - std::min(rss_after, rss_before)));

  EXPECT_EQ(shorts.corrupt + bulks.corrupt, 0u) << "corrupted bytes";
  EXPECT_EQ(final_round.ok.load(), 60u) << "the final round after the chaos";
  EXPECT_GT(shorts.ok, 100u * static_cast<uint64_t>(seconds) / 10);
  EXPECT_GT(bulks.ok, static_cast<uint64_t>(seconds) / 10);
  // Failures come from killed backends only: a small share of all connections.
  EXPECT_LT(shorts.failed + bulks.failed, (shorts.ok + bulks.ok) / 10);
  EXPECT_GT(kills, 0u);
  EXPECT_TRUE(fds_back) << "descriptors: " << lb.open_fds() << ", baseline " << fds_before;
  EXPECT_LT(rss_after, rss_before + 32 * 1024) << "RSS grew by more than 32 MiB";
}

}  // namespace
}  // namespace ringlb::test
