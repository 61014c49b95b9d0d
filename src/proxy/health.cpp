#include "ringlb/proxy/health_monitor.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <string>

#include "ringlb/clock.h"
#include "ringlb/model/health.h"

namespace ringlb::proxy {

namespace {

// Longest sleep of the loop when nothing is due: bounds how late a missed wake-up
// (there should be none) would be noticed.
constexpr uint64_t kMaxSleepMs = 1000;

enum class Phase : uint8_t { idle, connecting, sending, reading };

// One backend's checks and what the monitor last saw of it.
struct VipEntry;

struct Target {
  VipEntry* entry = nullptr;  // the VIP it belongs to
  std::string backend;        // its name
  SocketAddress address;
  std::shared_ptr<BackendStats> stats;
  uint64_t next_due_ms = 0;
  uint64_t deadline_ms = 0;
  Phase phase = Phase::idle;
  UniqueFd fd;
  size_t sent = 0;
  std::string received;
  uint64_t connections_seen = 0;  // BackendStats::connections at the last look
};

struct VipEntry {
  VipSpec spec;
  VipHealth health;
  std::map<std::string, Target> targets;  // by backend name
  bool panic = false;
};

class Loop {
 public:
  Loop(Runtime& runtime, int stop_fd) : runtime_(runtime), stop_fd_(stop_fd) {}

  void run() {
    epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    for (auto [fd, marker] : {std::pair{stop_fd_, stop_marker()},
                              std::pair{runtime_.health_event_fd(), event_marker()}}) {
      epoll_event ev{.events = EPOLLIN, .data = {.ptr = marker}};
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
    }
    while (true) {
      // Whatever woke the loop (a config, a worker's failure streak, a check's end, a
      // deadline) is acted on here, before it sleeps again.
      const uint64_t now = monotonic_ms();
      if (const auto config = runtime_.config(); config != config_) {
        config_ = config;
        resync(now);
      }
      expire_checks(now);
      apply_passive(now);
      publish(now);
      start_due_checks(now);
      epoll_event events[64];
      const int n = ::epoll_wait(epoll_.get(), events, 64, static_cast<int>(sleep_ms(now)));
      for (int i = 0; i < n; ++i) {
        if (events[i].data.ptr == stop_marker()) {
          return;
        }
        if (events[i].data.ptr == event_marker()) {
          uint64_t value;
          (void)!::read(runtime_.health_event_fd(), &value, sizeof(value));
          continue;
        }
        advance(*static_cast<Target*>(events[i].data.ptr), monotonic_ms());
      }
    }
  }

 private:
  // epoll data of the two eventfds (a Target pointer is never one of these).
  void* stop_marker() { return &stop_fd_; }
  void* event_marker() { return &runtime_; }

  // Follows the running config: VIPs and backends added or removed, changed settings.
  void resync(uint64_t now) {
    std::map<std::string, VipEntry> next;
    for (const auto& spec : config_->vips) {
      auto found = vips_.find(spec.name);
      VipEntry& entry = next[spec.name];
      if (found != vips_.end()) {
        entry = std::move(found->second);
      }
      entry.spec = spec;
      entry.health.sync(spec);
      std::map<std::string, Target> targets;
      for (const auto& b : spec.backends) {
        // Forward mode: the backend host, at the VIP's port.
        const SocketAddress address =
            spec.mode == Mode::forward ? SocketAddress{b.address.ip, spec.listen.port} : b.address;
        auto stats = runtime_.backend_stats(spec.name, b.name);
        auto old = entry.targets.find(b.name);
        Target& t = targets[b.name];
        if (old != entry.targets.end() && old->second.address == address &&
            old->second.stats == stats) {
          t = std::move(old->second);
          continue;
        }
        t.address = address;
        t.stats = stats;
        t.next_due_ms = now;
        if (!stats) {
          continue;
        }
        t.connections_seen = stats->connections.load(std::memory_order_relaxed);
        // The Runtime gives a backend added at run time its first slow-start weight
        // already (when it made its counters): ramp on from there.
        if (old == entry.targets.end() &&
            stats->ramp_permille.load(std::memory_order_relaxed) < 1000) {
          if (BackendHealth* h = entry.health.find(b.name)) {
            h->start_slow_start(now);
          }
        }
      }
      entry.targets = std::move(targets);  // targets left behind close their sockets
    }
    for (auto& [name, entry] : vips_) {
      if (next.find(name) == next.end()) {
        forget(entry);
      }
    }
    vips_ = std::move(next);
    // Targets moved to new map nodes: point them at their VIP again, and the epoll
    // entries of checks in flight at their new address.
    for (auto& [name, entry] : vips_) {
      for (auto& [backend, t] : entry.targets) {
        t.entry = &entry;
        t.backend = backend;
        if (t.phase != Phase::idle) {
          epoll_event ev{.events = t.phase == Phase::reading ? EPOLLIN : EPOLLOUT,
                         .data = {.ptr = &t}};
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, t.fd.get(), &ev);
        }
      }
    }
    dirty_ = true;
  }

  // A VIP the config no longer has: its backends are healthy again.
  void forget(VipEntry& entry) {
    for (auto& [name, t] : entry.targets) {
      if (t.stats) {
        t.stats->healthy.store(true, std::memory_order_relaxed);
        t.stats->health_state.store(static_cast<uint8_t>(HealthState::up),
                                    std::memory_order_relaxed);
        t.stats->ramp_permille.store(1000, std::memory_order_relaxed);
      }
    }
    if (auto vip = runtime_.find_vip(entry.spec.name)) {
      vip->health().panic.store(false, std::memory_order_relaxed);
    }
    republish_ = true;
  }

  uint64_t sleep_ms(uint64_t now) {
    uint64_t wake = now + kMaxSleepMs;
    for (auto& [name, entry] : vips_) {
      for (auto& [backend, t] : entry.targets) {
        if (entry.spec.health.type == CheckType::tcp) {
          wake = std::min(wake, t.phase == Phase::idle ? t.next_due_ms : t.deadline_ms);
        }
        if (BackendHealth* h = entry.health.find(backend)) {
          if (h->ejected_until_ms() != 0) {
            wake = std::min(wake, h->ejected_until_ms());
          }
          if (const uint64_t step = h->next_ramp_step_ms(entry.spec.health, now); step != 0) {
            wake = std::min(wake, step);
          }
        }
      }
    }
    return wake > now ? wake - now : 0;
  }

  void start_due_checks(uint64_t now) {
    for (auto& [name, entry] : vips_) {
      if (entry.spec.health.type != CheckType::tcp) {
        continue;
      }
      for (auto& [backend, t] : entry.targets) {
        if (t.phase == Phase::idle && now >= t.next_due_ms) {
          start_check(entry, t, now);
        }
      }
    }
  }

  void start_check(const VipEntry& entry, Target& t, uint64_t now) {
    t.next_due_ms = now + entry.spec.health.interval_ms;
    t.deadline_ms = now + entry.spec.health.timeout_ms;
    t.sent = 0;
    t.received.clear();
    t.fd = UniqueFd(::socket(t.address.ip.is_v4() ? AF_INET : AF_INET6,
                             SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!t.fd.valid()) {
      finish(t, false, now);
      return;
    }
    sockaddr_storage storage;
    const socklen_t len = t.address.to_sockaddr(storage);
    if (::connect(t.fd.get(), reinterpret_cast<sockaddr*>(&storage), len) != 0 &&
        errno != EINPROGRESS) {
      finish(t, false, now);
      return;
    }
    t.phase = Phase::connecting;
    epoll_event ev{.events = EPOLLOUT, .data = {.ptr = &t}};
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, t.fd.get(), &ev);
  }

  // Moves a check on after its socket became ready.
  void advance(Target& t, uint64_t now) {
    if (t.phase == Phase::idle) {
      return;
    }
    const HealthSpec& spec = t.entry->spec.health;
    if (t.phase == Phase::connecting) {
      int error = 0;
      socklen_t len = sizeof(error);
      if (::getsockopt(t.fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
        finish(t, false, now);
        return;
      }
      t.phase = Phase::sending;
    }
    if (t.phase == Phase::sending) {
      while (t.sent < spec.send.size()) {
        const ssize_t n = ::send(t.fd.get(), spec.send.data() + t.sent, spec.send.size() - t.sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN) {
          return;  // EPOLLOUT again
        }
        if (n <= 0) {
          finish(t, false, now);
          return;
        }
        t.sent += static_cast<size_t>(n);
      }
      if (spec.expect.empty()) {
        finish(t, true, now);
        return;
      }
      t.phase = Phase::reading;
      epoll_event ev{.events = EPOLLIN, .data = {.ptr = &t}};
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, t.fd.get(), &ev);
    }
    char buf[kMaxHealthPayload];
    while (t.phase == Phase::reading) {
      const size_t want = spec.expect.size() - t.received.size();
      const ssize_t n = ::recv(t.fd.get(), buf, want, MSG_DONTWAIT);
      if (n < 0 && errno == EAGAIN) {
        return;
      }
      if (n <= 0) {
        finish(t, false, now);  // closed or reset before the whole prefix came
        return;
      }
      t.received.append(buf, static_cast<size_t>(n));
      // Fail as soon as the reply differs; pass once the whole prefix matched.
      if (spec.expect.compare(0, t.received.size(), t.received) != 0) {
        finish(t, false, now);
      } else if (t.received.size() == spec.expect.size()) {
        finish(t, true, now);
      }
    }
  }

  void expire_checks(uint64_t now) {
    for (auto& [name, entry] : vips_) {
      for (auto& [backend, t] : entry.targets) {
        if (t.phase != Phase::idle && now >= t.deadline_ms) {
          finish(t, false, now);
        }
      }
    }
  }

  void finish(Target& t, bool passed, uint64_t now) {
    t.fd.reset();  // closing removes it from the epoll set
    t.phase = Phase::idle;
    if (t.stats) {
      t.stats->health_checks.fetch_add(1, std::memory_order_relaxed);
      if (!passed) {
        t.stats->health_check_failures.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (BackendHealth* h = t.entry->health.find(t.backend)) {
      h->on_check(passed, t.entry->spec.health, now);
    }
    dirty_ = true;
  }

  // Ejects backends whose failure streak reached the threshold; a connection
  // established since the last look resets the back-off.
  void apply_passive(uint64_t now) {
    for (auto& [name, entry] : vips_) {
      const HealthSpec& spec = entry.spec.health;
      for (auto& [backend, t] : entry.targets) {
        BackendHealth* h = entry.health.find(backend);
        if (h == nullptr || !t.stats) {
          continue;
        }
        const uint64_t connections = t.stats->connections.load(std::memory_order_relaxed);
        if (connections != t.connections_seen) {
          t.connections_seen = connections;
          h->on_success();
        }
        if (h->tick(now)) {
          dirty_ = true;
        }
        if (spec.eject_after_failures != 0 && h->ejected_until_ms() == 0 &&
            t.stats->consecutive_failures.load(std::memory_order_relaxed) >=
                spec.eject_after_failures) {
          t.stats->consecutive_failures.store(0, std::memory_order_relaxed);
          t.stats->ejections.fetch_add(1, std::memory_order_relaxed);
          h->eject(spec, now);
          dirty_ = true;
        }
      }
    }
  }

  // Writes every backend's verdict to its counters; republishes the pools when what
  // the policies use (healthy, ramp) changed.
  void publish(uint64_t now) {
    bool ramping = false;
    for (auto& [name, entry] : vips_) {
      for (const auto& [backend, t] : entry.targets) {
        ramping =
            ramping || (t.stats && t.stats->ramp_permille.load(std::memory_order_relaxed) < 1000);
      }
    }
    if (!dirty_ && !ramping && !republish_) {
      return;
    }
    dirty_ = false;
    for (auto& [name, entry] : vips_) {
      const bool panic = entry.health.panic(entry.spec);
      const bool entered = panic && !entry.panic;
      entry.panic = panic;
      // Stored every time: a reload that moves the VIP's address gives it a new
      // VipRuntime (forward-mode VIPs have none).
      if (auto vip = runtime_.find_vip(name)) {
        vip->health().panic.store(panic, std::memory_order_relaxed);
        if (entered) {
          vip->health().panics.fetch_add(1, std::memory_order_relaxed);
        }
      }
      for (const auto& b : entry.spec.backends) {
        auto t = entry.targets.find(b.name);
        if (t == entry.targets.end() || !t->second.stats) {
          continue;
        }
        BackendStats& s = *t->second.stats;
        const auto v = entry.health.verdict(entry.spec, b, panic, now);
        const auto state = static_cast<uint8_t>(v.state);
        if (s.health_state.exchange(state, std::memory_order_relaxed) != state) {
          s.health_changes.fetch_add(1, std::memory_order_relaxed);
        }
        if (s.healthy.exchange(v.usable, std::memory_order_relaxed) != v.usable) {
          republish_ = true;
        }
        if (s.ramp_permille.exchange(v.ramp_permille, std::memory_order_relaxed) !=
            v.ramp_permille) {
          republish_ = true;
        }
      }
    }
    if (republish_) {
      republish_ = false;
      if (auto done = runtime_.republish(); !done) {
        std::fprintf(stderr, "ringlbd: health: republishing the pools failed: %s\n",
                     done.error().message.c_str());
      }
    }
  }

  Runtime& runtime_;
  int stop_fd_;
  UniqueFd epoll_;
  std::shared_ptr<const Config> config_;
  std::map<std::string, VipEntry> vips_;
  bool dirty_ = false;      // a verdict may have changed
  bool republish_ = false;  // the pools must be rebuilt
};

}  // namespace

HealthMonitor::~HealthMonitor() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof(one));
    thread_.join();
  }
}

Result<void> HealthMonitor::start() {
  stop_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stop_.valid() || runtime_.health_event_fd() < 0) {
    return system_error("health monitor eventfd", errno);
  }
  thread_ = std::thread([this] { Loop(runtime_, stop_.get()).run(); });
  return {};
}

}  // namespace ringlb::proxy
