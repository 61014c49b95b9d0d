#include "ringlb/runtime.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

namespace ringlb {

Result<UniqueFd> bind_listener(const SocketAddress& address, int backlog) {
  const int family = address.ip.is_v4() ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return system_error("socket for " + address.to_string(), errno);
  }
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return system_error("setsockopt SO_REUSEPORT on " + address.to_string(), errno);
  }
  if (family == AF_INET6 &&
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
    return system_error("setsockopt IPV6_V6ONLY on " + address.to_string(), errno);
  }
  sockaddr_storage storage;
  const socklen_t len = address.to_sockaddr(storage);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    return system_error("cannot listen on " + address.to_string(), errno);
  }
  if (::listen(fd.get(), backlog) != 0) {
    return system_error("listen on " + address.to_string(), errno);
  }
  return fd;
}

Runtime::Runtime(size_t workers) : vips_(std::make_shared<const VipSet>()) {
  for (size_t i = 0; i < workers; ++i) {
    worker_stats_.push_back(std::make_unique<WorkerStats>());
  }
}

Result<void> Runtime::apply(const Config& config) {
  const auto current = vips_.load();
  struct Pending {
    std::shared_ptr<VipRuntime> vip;
    std::shared_ptr<const VipState> state;
  };
  std::vector<Pending> updates;
  std::vector<std::shared_ptr<VipRuntime>> next;
  decltype(backend_stats_) next_stats;

  for (const auto& spec : config.vips) {
    if (spec.mode != Mode::proxy) {
      continue;
    }
    std::vector<Backend> backends;
    for (const auto& b : spec.backends) {
      auto& stats = next_stats[{spec.name, b.name}];
      auto found = backend_stats_.find({spec.name, b.name});
      stats = found != backend_stats_.end() ? found->second : std::make_shared<BackendStats>();
      backends.push_back(Backend{
          .spec = b, .healthy = stats->healthy.load(std::memory_order_relaxed), .stats = stats});
    }
    const PoolOptions options{.hash_key = config.daemon.hash_key,
                              .maglev_table_size = config.daemon.maglev_table_size};
    auto state = std::make_shared<const VipState>(
        VipState{.spec = spec, .pool = Pool::build(std::move(backends), spec.policy, options)});

    std::shared_ptr<VipRuntime> existing;
    for (const auto& vip : current->vips) {
      if (vip->name() == spec.name && vip->listen() == spec.listen) {
        existing = vip;
      }
    }
    if (existing) {
      updates.push_back({existing, state});
      next.push_back(existing);
      continue;
    }
    std::vector<UniqueFd> listeners;
    for (size_t w = 0; w < worker_count(); ++w) {
      auto fd = bind_listener(spec.listen, 4096);
      if (!fd) {
        return Error{"vip " + spec.name + ": " + fd.error().message, fd.error().code};
      }
      listeners.push_back(std::move(*fd));
    }
    next.push_back(
        std::make_shared<VipRuntime>(spec.name, spec.listen, std::move(listeners), state));
  }

  // Nothing can fail from here on.
  for (auto& u : updates) {
    u.vip->state().publish(u.state);
  }
  vips_.publish(std::make_shared<const VipSet>(VipSet{std::move(next)}));
  backend_stats_ = std::move(next_stats);
  config_ = config;
  return {};
}

void VipRuntime::shutdown_listeners() const {
  for (const auto& fd : listeners_) {
    ::shutdown(fd.get(), SHUT_RDWR);
  }
}

void Runtime::begin_drain() {
  draining_.store(true, std::memory_order_release);
  for (const auto& vip : vips_.load()->vips) {
    vip->shutdown_listeners();
  }
}

std::string Runtime::render_stats() const {
  std::string out;
  for (size_t i = 0; i < worker_stats_.size(); ++i) {
    append_worker_stats(out, "worker." + std::to_string(i) + ".", *worker_stats_[i]);
  }
  const auto set = vips_.load();
  for (const auto& vip : set->vips) {
    const auto state = vip->state().load();
    for (const auto& b : state->pool->backends()) {
      const std::string prefix = "vip." + vip->name() + ".backend." + b.spec.name + ".";
      const auto& s = *b.stats;
      auto line = [&](const char* name, uint64_t value) {
        out += prefix + name + " " + std::to_string(value) + "\n";
      };
      line("active", static_cast<uint64_t>(s.active.load(std::memory_order_relaxed)));
      line("connections", s.connections.load(std::memory_order_relaxed));
      line("bytes_in", s.bytes_in.load(std::memory_order_relaxed));
      line("bytes_out", s.bytes_out.load(std::memory_order_relaxed));
      line("connect_refused", s.connect_refused.load(std::memory_order_relaxed));
      line("connect_timeouts", s.connect_timeouts.load(std::memory_order_relaxed));
      line("connect_errors", s.connect_errors.load(std::memory_order_relaxed));
      line("failures", s.failures());
    }
  }
  return out;
}

}  // namespace ringlb
