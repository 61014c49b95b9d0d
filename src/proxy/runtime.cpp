#include "ringlb/proxy/runtime.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "ringlb/model/health.h"

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
  // Accepted sockets inherit TCP_NODELAY from the listener: one syscall less per client.
  if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return system_error("setsockopt TCP_NODELAY on " + address.to_string(), errno);
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

namespace {

struct BackendLine {
  const char* name;
  uint64_t value;
  bool gauge;
};

std::vector<BackendLine> backend_lines(const BackendStats& s) {
  return {
      {"active", static_cast<uint64_t>(s.active.load(std::memory_order_relaxed)), true},
      {"connections", s.connections.load(std::memory_order_relaxed), false},
      {"bytes_in", s.bytes_in.load(std::memory_order_relaxed), false},
      {"bytes_out", s.bytes_out.load(std::memory_order_relaxed), false},
      {"connect_refused", s.connect_refused.load(std::memory_order_relaxed), false},
      {"connect_timeouts", s.connect_timeouts.load(std::memory_order_relaxed), false},
      {"connect_errors", s.connect_errors.load(std::memory_order_relaxed), false},
      {"failures", s.failures(), false},
      {"healthy", s.healthy.load(std::memory_order_relaxed) ? 1u : 0u, true},
      {"health_checks", s.health_checks.load(std::memory_order_relaxed), false},
      {"health_check_failures", s.health_check_failures.load(std::memory_order_relaxed), false},
      {"health_changes", s.health_changes.load(std::memory_order_relaxed), false},
      {"ejections", s.ejections.load(std::memory_order_relaxed), false},
  };
}

}  // namespace

std::shared_ptr<const VipState> VipState::make(VipSpec spec, std::vector<Backend> backends,
                                               const PoolOptions& options, size_t workers) {
  auto state = std::make_shared<VipState>();
  const auto plan = PolicyPlan::make(Pool::build(std::move(backends), options), spec.policy);
  state->pool = plan->shared_pool();
  state->spec = std::move(spec);
  state->policies.reserve(workers);
  for (size_t w = 0; w < workers; ++w) {
    // splitmix-style mixing: neighbouring pool ids and workers get unrelated seeds.
    uint64_t seed = (state->pool->id() << 16) ^ w;
    seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ULL;
    seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebULL;
    state->policies.push_back(make_policy(plan, seed ^ (seed >> 31)));
  }
  return state;
}

Runtime::Runtime(size_t workers)
    : worker_info_(workers),
      vips_(std::make_shared<const VipSet>()),
      config_(std::make_shared<const Config>()),
      health_events_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  for (size_t i = 0; i < workers; ++i) {
    worker_stats_.push_back(std::make_unique<WorkerStats>());
  }
}

Runtime::~Runtime() {
  for (const auto& info : worker_info_) {
    for (int fd : {info.cycles_fd, info.instructions_fd, info.task_clock_fd}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
}

void Runtime::set_worker_info(size_t index, WorkerInfo info) {
  std::lock_guard lock(info_mu_);
  worker_info_.at(index) = info;
}

WorkerInfo Runtime::worker_info(size_t index) const {
  std::lock_guard lock(info_mu_);
  return worker_info_.at(index);
}

std::shared_ptr<VipRuntime> Runtime::find_vip(std::string_view name) const {
  // The snapshot is held in a local: a range-for over `load()->vips` would outlive
  // the temporary shared_ptr, and a concurrent publish (the health monitor's) frees it.
  const auto set = vips_.load();
  for (const auto& vip : set->vips) {
    if (vip->name() == name) {
      return vip;
    }
  }
  return nullptr;
}

void Runtime::set_publish_hook(PublishHook hook) {
  std::lock_guard lock(writer_mu_);
  publish_hook_ = std::move(hook);
}

Result<void> Runtime::apply(const Config& config) {
  std::lock_guard lock(writer_mu_);
  auto applied = apply_locked(config);
  if (applied) {
    notify_health();  // the monitor follows added and removed backends at once
  }
  return applied;
}

Result<void> Runtime::edit(const std::function<Result<void>(Config&)>& change) {
  std::lock_guard lock(writer_mu_);
  Config next = *config_.load();
  if (auto changed = change(next); !changed) {
    return changed;
  }
  auto applied = apply_locked(next);
  if (applied) {
    notify_health();
  }
  return applied;
}

Result<void> Runtime::republish() {
  std::lock_guard lock(writer_mu_);
  return apply_locked(*config_.load());
}

std::shared_ptr<BackendStats> Runtime::backend_stats(std::string_view vip,
                                                     std::string_view backend) {
  std::lock_guard lock(writer_mu_);
  auto found = backend_stats_.find({std::string(vip), std::string(backend)});
  return found != backend_stats_.end() ? found->second : nullptr;
}

void Runtime::notify_health() const {
  const uint64_t one = 1;
  // Only fails when the counter would overflow: the monitor is woken already.
  (void)!::write(health_events_.get(), &one, sizeof(one));
}

Result<void> Runtime::shutdown_backend(std::string_view vip_name, std::string_view backend) {
  auto vip = find_vip(vip_name);
  if (!vip) {
    return Error{"no vip named " + std::string(vip_name), ENOENT};
  }
  const auto state = vip->state().load();
  const Backend* b = state->pool->find(backend);
  if (b == nullptr) {
    return Error{"no backend named " + std::string(backend), ENOENT};
  }
  b->stats->shutdown_epoch.fetch_add(1, std::memory_order_relaxed);
  return {};
}

Result<void> Runtime::apply_locked(const Config& config) {
  const auto current = vips_.load();
  struct Pending {
    std::shared_ptr<VipRuntime> vip;
    std::shared_ptr<const VipState> state;
  };
  std::vector<Pending> updates;
  std::vector<std::shared_ptr<VipRuntime>> next;
  decltype(backend_stats_) next_stats;

  for (const auto& spec : config.vips) {
    // Every VIP's backends keep their counters: forward-mode ones carry health too.
    std::vector<Backend> backends;
    for (const auto& b : spec.backends) {
      auto& stats = next_stats[{spec.name, b.name}];
      auto found = backend_stats_.find({spec.name, b.name});
      if (found != backend_stats_.end()) {
        stats = found->second;
      } else {
        stats = std::make_shared<BackendStats>();
        // Added while running: slow start begins with this very pool, before the health
        // monitor has seen the backend (it then ramps it on, health.h).
        if (applied_once_ && spec.health.slow_start_ms != 0) {
          stats->ramp_permille.store(kSlowStartFirstPermille, std::memory_order_relaxed);
        }
      }
      backends.push_back(
          Backend{.spec = b,
                  .healthy = stats->healthy.load(std::memory_order_relaxed),
                  .stats = stats,
                  .ramp_permille = stats->ramp_permille.load(std::memory_order_relaxed),
                  .ejected = stats->health_state.load(std::memory_order_relaxed) ==
                             static_cast<uint8_t>(HealthState::ejected)});
    }
    if (spec.mode != Mode::proxy) {
      continue;
    }
    const PoolOptions options{.hash_key = config.daemon.hash_key,
                              .maglev_table_size = config.daemon.maglev_table_size};
    auto state = VipState::make(spec, std::move(backends), options, worker_count());

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

  // The XDP plane (ringlbd's hook) takes the same change, or the change is rejected.
  if (publish_hook_) {
    const auto healthy = [&next_stats](const std::string& vip, const std::string& backend) {
      const auto it = next_stats.find({vip, backend});
      return it == next_stats.end() || it->second->healthy.load(std::memory_order_relaxed);
    };
    if (auto hooked = publish_hook_(config, healthy); !hooked) {
      return hooked;
    }
  }

  // Nothing can fail from here on.
  // A VIP removed, renamed or moved to another address stops accepting now: a connect
  // to its old address is refused (or, after a rename on the same address, reaches the
  // new VIP's listeners only). Its connections finish on their own.
  for (const auto& vip : current->vips) {
    if (std::find(next.begin(), next.end(), vip) == next.end()) {
      vip->shutdown_listeners();
    }
  }
  for (auto& u : updates) {
    u.vip->state().publish(u.state);
  }
  vips_.publish(std::make_shared<const VipSet>(VipSet{std::move(next)}));
  {
    std::lock_guard removed_lock(removed_mu_);
    for (auto& [key, stats] : backend_stats_) {
      if (next_stats.find(key) == next_stats.end()) {
        removed_.live.push_back(std::move(stats));
      }
    }
    // Counters nobody else references any more (no snapshot, no connection) are final:
    // fold them into the sums, so that add/remove cycles hold no memory.
    std::erase_if(removed_.live, [this](const std::shared_ptr<BackendStats>& stats) {
      if (stats.use_count() != 1) {
        return false;
      }
      const auto lines = backend_lines(*stats);
      removed_.folded.resize(lines.size());
      for (size_t k = 0; k < lines.size(); ++k) {
        removed_.folded[k] += lines[k].gauge ? 0 : lines[k].value;
      }
      return true;
    });
  }
  backend_stats_ = std::move(next_stats);
  config_.publish(std::make_shared<const Config>(config));
  applied_once_ = true;
  return {};
}

void VipRuntime::shutdown_listeners() {
  listening_.store(false, std::memory_order_release);
  for (const auto& fd : listeners_) {
    ::shutdown(fd.get(), SHUT_RDWR);
  }
}

void Runtime::begin_drain() {
  std::lock_guard lock(writer_mu_);
  draining_.store(true, std::memory_order_release);
  const auto set = vips_.load();
  for (const auto& vip : set->vips) {
    vip->shutdown_listeners();
  }
}

namespace {

using Buckets = std::array<uint64_t, LogHistogram::kBuckets>;

Buckets sum_buckets(const std::vector<std::unique_ptr<WorkerStats>>& workers,
                    const LogHistogram WorkerStats::*histogram) {
  Buckets out{};
  for (const auto& w : workers) {
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] += ((*w).*histogram).bucket(i);
    }
  }
  return out;
}

// Reads a perf_event counter fd; nullopt when the machine has no such counter.
std::optional<uint64_t> read_counter(int fd) {
  uint64_t value = 0;
  if (fd < 0 || ::read(fd, &value, sizeof(value)) != sizeof(value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::vector<std::pair<const char*, uint64_t>> Runtime::removed_counters() const {
  std::lock_guard lock(removed_mu_);
  std::vector<std::pair<const char*, uint64_t>> out;
  const auto names = backend_lines(BackendStats{});
  for (size_t k = 0; k < names.size(); ++k) {
    if (names[k].gauge) {
      continue;
    }
    uint64_t sum = k < removed_.folded.size() ? removed_.folded[k] : 0;
    for (const auto& stats : removed_.live) {
      sum += backend_lines(*stats)[k].value;
    }
    out.emplace_back(names[k].name, sum);
  }
  return out;
}

std::string Runtime::render_stats() const {
  std::string out;
  for (size_t i = 0; i < worker_stats_.size(); ++i) {
    const std::string prefix = "worker." + std::to_string(i) + ".";
    append_worker_stats(out, prefix, *worker_stats_[i]);
    const WorkerInfo info = worker_info(i);
    out += prefix + "cpu " + std::to_string(info.cpu < 0 ? 0 : info.cpu) + "\n";
    if (auto v = read_counter(info.task_clock_fd)) {
      out += prefix + "task_clock_ns " + std::to_string(*v) + "\n";
    }
    if (auto v = read_counter(info.cycles_fd)) {
      out += prefix + "cycles " + std::to_string(*v) + "\n";
    }
    if (auto v = read_counter(info.instructions_fd)) {
      out += prefix + "instructions " + std::to_string(*v) + "\n";
    }
  }
#define RINGLB_SUM_COUNTER(name, help)                                       \
  {                                                                          \
    uint64_t sum = 0;                                                        \
    for (const auto& w : worker_stats_) {                                    \
      sum += w->name.get();                                                  \
    }                                                                        \
    out += std::string("proxy.") + #name + " " + std::to_string(sum) + "\n"; \
  }
  RINGLB_WORKER_COUNTERS(RINGLB_SUM_COUNTER)
#undef RINGLB_SUM_COUNTER
  const auto connect = sum_buckets(worker_stats_, &WorkerStats::connect_time_us);
  const auto duration = sum_buckets(worker_stats_, &WorkerStats::connection_duration_ms);
  for (const auto& [label, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}}) {
    out += std::string("proxy.connect_time_us.") + label + " " +
           std::to_string(histogram_quantile(connect, q)) + "\n";
  }
  for (const auto& [label, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}}) {
    out += std::string("proxy.connection_duration_ms.") + label + " " +
           std::to_string(histogram_quantile(duration, q)) + "\n";
  }
  for (const auto& [name, value] : removed_counters()) {
    out += std::string("proxy.removed_backends.") + name + " " + std::to_string(value) + "\n";
  }
  const auto set = vips_.load();
  for (const auto& vip : set->vips) {
    const auto state = vip->state().load();
    const std::string vip_prefix = "vip." + vip->name() + ".";
    out += vip_prefix + "health_panic " +
           (vip->health().panic.load(std::memory_order_relaxed) ? "1" : "0") + "\n";
    out += vip_prefix + "health_panics " +
           std::to_string(vip->health().panics.load(std::memory_order_relaxed)) + "\n";
    for (const auto& b : state->pool->backends()) {
      const std::string prefix = "vip." + vip->name() + ".backend." + b.spec.name + ".";
      for (const auto& line : backend_lines(*b.stats)) {
        out += prefix + line.name + " " + std::to_string(line.value) + "\n";
      }
    }
  }
  return out;
}

std::string Runtime::render_metrics() const {
  std::string out;
  auto family = [&](const std::string& name, const char* type, const char* help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
#define RINGLB_METRIC_COUNTER(name, help)                                                       \
  {                                                                                             \
    const bool gauge = std::string_view(#name) == "active";                                     \
    const std::string metric = std::string("ringlb_worker_") + #name + (gauge ? "" : "_total"); \
    family(metric, gauge ? "gauge" : "counter", help);                                          \
    for (size_t i = 0; i < worker_stats_.size(); ++i) {                                         \
      out += metric + "{worker=\"" + std::to_string(i) + "\"} " +                               \
             std::to_string(worker_stats_[i]->name.get()) + "\n";                               \
    }                                                                                           \
  }
  RINGLB_WORKER_COUNTERS(RINGLB_METRIC_COUNTER)
#undef RINGLB_METRIC_COUNTER
  auto histogram = [&](const char* name, const char* help,
                       const LogHistogram WorkerStats::*member) {
    family(name, "histogram", help);
    const auto buckets = sum_buckets(worker_stats_, member);
    uint64_t cumulative = 0;
    uint64_t sum = 0;
    for (const auto& w : worker_stats_) {
      sum += ((*w).*member).sum();
    }
    for (size_t i = 0; i < buckets.size(); ++i) {
      cumulative += buckets[i];
      out += std::string(name) + "_bucket{le=\"" + std::to_string(LogHistogram::upper_bound(i)) +
             "\"} " + std::to_string(cumulative) + "\n";
    }
    out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    out += std::string(name) + "_sum " + std::to_string(sum) + "\n";
    out += std::string(name) + "_count " + std::to_string(cumulative) + "\n";
  };
  histogram("ringlb_connect_time_microseconds", "accept to backend connected, retries included",
            &WorkerStats::connect_time_us);
  histogram("ringlb_connection_duration_milliseconds", "accept to close",
            &WorkerStats::connection_duration_ms);
  for (const auto& [name, value] : removed_counters()) {
    const std::string metric = std::string("ringlb_removed_backends_") + name + "_total";
    family(metric, "counter", "summed over the backends changes removed, see README.md");
    out += metric + " " + std::to_string(value) + "\n";
  }
  const auto set = vips_.load();
  family("ringlb_vip_health_panic", "gauge", "1 while too few backends are usable (all are used)");
  for (const auto& vip : set->vips) {
    out += "ringlb_vip_health_panic{vip=\"" + vip->name() + "\"} " +
           (vip->health().panic.load(std::memory_order_relaxed) ? "1" : "0") + "\n";
  }
  const auto lines = backend_lines(BackendStats{});
  for (size_t k = 0; k < lines.size(); ++k) {
    const bool gauge = lines[k].gauge;
    const std::string metric =
        std::string("ringlb_backend_") + lines[k].name + (gauge ? "" : "_total");
    family(metric, gauge ? "gauge" : "counter", "per backend, see README.md");
    for (const auto& vip : set->vips) {
      const auto state = vip->state().load();
      for (const auto& b : state->pool->backends()) {
        out += metric + "{vip=\"" + vip->name() + "\",backend=\"" + b.spec.name + "\"} " +
               std::to_string(backend_lines(*b.stats)[k].value) + "\n";
      }
    }
  }
  return out;
}

}  // namespace ringlb
