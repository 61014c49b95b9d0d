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

// Adds the running totals of `values` to `sums` (gauges are levels: they do not add up).
void add_running_totals(telemetry::BackendValues& sums, const telemetry::BackendValues& values) {
  for (size_t k = 0; k < sums.size(); ++k) {
    sums[k] += telemetry::kBackendCounters[k].kind == telemetry::Kind::counter ? values[k] : 0;
  }
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

std::vector<Backend> Runtime::backends_of(const VipSpec& spec, BackendStatsMap& next_stats) const {
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
  return backends;
}

void Runtime::retire_backend_stats(BackendStatsMap next_stats) {
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
    add_running_totals(removed_.folded, backend_values(*stats));
    return true;
  });
  backend_stats_ = std::move(next_stats);
}

Result<void> Runtime::apply_locked(const Config& config) {
  const auto current = vips_.load();
  struct Pending {
    std::shared_ptr<VipRuntime> vip;
    std::shared_ptr<const VipState> state;
  };
  std::vector<Pending> updates;
  std::vector<std::shared_ptr<VipRuntime>> next;
  BackendStatsMap next_stats;

  for (const auto& spec : config.vips) {
    // Every VIP's backends keep their counters: forward-mode ones carry health too.
    std::vector<Backend> backends = backends_of(spec, next_stats);
    if (spec.mode != Mode::proxy) {
      continue;
    }
    const PoolOptions options{.hash_key = config.daemon.hash_key,
                              .maglev_table_size = config.daemon.maglev_table_size};
    auto state = VipState::make(spec, std::move(backends), options, worker_count());
    const auto existing = std::find_if(current->vips.begin(), current->vips.end(), [&](auto& v) {
      return v->name() == spec.name && v->listen() == spec.listen;
    });
    if (existing != current->vips.end()) {
      updates.push_back({*existing, state});
      next.push_back(*existing);
      continue;
    }
    auto listeners = listeners_for(spec, *current);
    if (!listeners) {
      return listeners.error();
    }
    next.push_back(
        std::make_shared<VipRuntime>(spec.name, spec.listen, std::move(*listeners), state));
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
  retire_backend_stats(std::move(next_stats));
  config_.publish(std::make_shared<const Config>(config));
  applied_once_ = true;
  inherited_.clear();  // sockets no VIP took
  return {};
}

Result<std::vector<UniqueFd>> Runtime::listeners_for(const VipSpec& spec, const VipSet& current) {
  if (listeners_released()) {
    return Error{"vip " + spec.name + ": this ringlbd handed its listeners over and is draining",
                 EBUSY};
  }
  std::vector<UniqueFd> listeners;
  const auto inherited = std::find_if(inherited_.begin(), inherited_.end(),
                                      [&](const auto& i) { return i.address == spec.listen; });
  if (inherited != inherited_.end()) {
    if (inherited->fds.size() > worker_count()) {
      return Error{"vip " + spec.name + ": the running ringlbd accepts on " +
                       spec.listen.to_string() + " with " + std::to_string(inherited->fds.size()) +
                       " workers, this one has " + std::to_string(worker_count()) +
                       ": a socket left without a worker would keep the clients queued on it; "
                       "start this one with --workers " +
                       std::to_string(inherited->fds.size()) + " or more",
                   EINVAL};
    }
    // Taken for good: a start whose apply fails exits, and the ringlbd that handed them
    // over keeps serving on its own copies.
    listeners = std::move(inherited->fds);
    inherited_.erase(inherited);
  } else {
    // An address none of our VIPs holds must be free: a second ringlbd would share it.
    const bool ours = std::any_of(current.vips.begin(), current.vips.end(),
                                  [&](const auto& v) { return v->listen() == spec.listen; });
    if (auto free = ours ? Result<void>{} : check_address_free(spec.listen); !free) {
      return Error{"vip " + spec.name + ": " + free.error().message, free.error().code};
    }
  }
  while (listeners.size() < worker_count()) {
    auto fd = bind_listener(spec.listen, 4096);
    if (!fd) {
      return Error{"vip " + spec.name + ": " + fd.error().message, fd.error().code};
    }
    listeners.push_back(std::move(*fd));
  }
  return listeners;
}

void VipRuntime::shutdown_listeners() {
  listening_.store(false, std::memory_order_release);
  for (const auto& fd : listeners_) {
    if (!released_) {
      ::shutdown(fd.get(), SHUT_RDWR);
    }
  }
}

void VipRuntime::release() {
  released_ = true;
  listening_.store(false, std::memory_order_release);
}

void Runtime::adopt_listeners(std::vector<InheritedListeners> inherited) {
  std::lock_guard lock(writer_mu_);
  inherited_ = std::move(inherited);
}

void Runtime::release_listeners() {
  std::lock_guard lock(writer_mu_);
  const auto set = vips_.load();
  for (const auto& vip : set->vips) {
    vip->release();
  }
  released_.store(true, std::memory_order_release);
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

// Reads a perf_event counter fd; nullopt when the machine has no such counter.
std::optional<uint64_t> read_perf_counter(int fd) {
  uint64_t value = 0;
  if (fd < 0 || ::read(fd, &value, sizeof(value)) != sizeof(value)) {
    return std::nullopt;
  }
  return value;
}

void add_histogram(telemetry::Histogram& sum, const LogHistogram& histogram) {
  const telemetry::Histogram values = histogram_values(histogram);
  for (size_t i = 0; i < sum.buckets.size(); ++i) {
    sum.buckets[i] += values.buckets[i];
  }
  sum.sum += values.sum;
}

telemetry::Latency latency(const telemetry::Histogram& histogram) {
  return telemetry::Latency{.percentiles = telemetry::percentiles(histogram),
                            .histogram = histogram};
}

}  // namespace

telemetry::BackendValues Runtime::removed_counters() const {
  std::lock_guard lock(removed_mu_);
  telemetry::BackendValues sums = removed_.folded;
  for (const auto& stats : removed_.live) {
    add_running_totals(sums, backend_values(*stats));
  }
  return sums;
}

void Runtime::fill_snapshot(telemetry::Snapshot& snapshot) const {
  telemetry::ProxyRows rows;
  telemetry::Histogram connect_time, duration;
  for (size_t i = 0; i < worker_stats_.size(); ++i) {
    const WorkerStats& stats = *worker_stats_[i];
    const WorkerInfo info = worker_info(i);
    rows.workers.push_back(
        telemetry::WorkerRow{.worker = static_cast<uint32_t>(i),
                             .counters = worker_values(stats),
                             .cpu = static_cast<uint64_t>(info.cpu < 0 ? 0 : info.cpu),
                             .task_clock_ns = read_perf_counter(info.task_clock_fd),
                             .cycles = read_perf_counter(info.cycles_fd),
                             .instructions = read_perf_counter(info.instructions_fd)});
    add_histogram(connect_time, stats.connect_time_us);
    add_histogram(duration, stats.connection_duration_ms);
  }
  rows.connect_time_us = latency(connect_time);
  rows.connection_duration_ms = latency(duration);
  rows.removed_backends = removed_counters();
  const auto set = vips_.load();
  for (const auto& vip : set->vips) {
    telemetry::VipRow row{.name = vip->name(),
                          .health_panic = vip->health().panic.load(std::memory_order_relaxed),
                          .health_panics = vip->health().panics.load(std::memory_order_relaxed),
                          .backends = {}};
    const auto state = vip->state().load();
    for (const auto& b : state->pool->backends()) {
      row.backends.push_back(
          telemetry::BackendRow{.name = b.spec.name, .counters = backend_values(*b.stats)});
    }
    rows.vips.push_back(std::move(row));
  }
  snapshot.proxy = std::move(rows);
}

}  // namespace ringlb
