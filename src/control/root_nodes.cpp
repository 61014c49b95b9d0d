// The root of the tree: the counter files, reload, and workers/<n>/.
#include <unistd.h>

#include <charconv>
#include <chrono>

#include "node.h"
#include "ringlb/config/config.h"
#include "ringlb/telemetry/writers.h"

namespace ringlb::control {

namespace {

// ---- stats, stats.json, metrics, reload ----

Result<std::string> show_stats(const Ctx& ctx, const Node&) {
  return telemetry::stats_text(counter_snapshot(ctx.tree));
}

Result<std::string> show_stats_json(const Ctx& ctx, const Node&) {
  return telemetry::stats_json(counter_snapshot(ctx.tree));
}

Result<std::string> show_metrics(const Ctx& ctx, const Node&) {
  return telemetry::prometheus_text(counter_snapshot(ctx.tree));
}

Result<void> store_reload(Ctx& ctx, const Node&, std::string_view) {
  return ctx.tree.reload();
}

// ---- pid, warnings ----

Result<std::string> show_pid(const Ctx&, const Node&) {
  return line(static_cast<uint64_t>(::getpid()));
}

// What the operator should fix, one "topic: text" line each; empty when nothing.
Result<std::string> show_warnings(const Ctx& ctx, const Node&) {
  std::string out;
  if (!ctx.tree.runtime.config()->daemon.hash_seed_set) {
    out += std::string("hash_seed: ") + kNoHashSeedWarning + "\n";
  }
  return out;
}

// ---- workers/<n>/ ----

Result<std::string> show_cpu(const Ctx& ctx, const Node&) {
  const int cpu = ctx.tree.runtime.worker_info(ctx.worker).cpu;
  return cpu < 0 ? line("none") : line(static_cast<uint64_t>(cpu));
}

// The perf counters, by WorkerInfo member.
constexpr int WorkerInfo::*kPerfFds[] = {&WorkerInfo::cycles_fd, &WorkerInfo::instructions_fd,
                                         &WorkerInfo::task_clock_fd};

Result<std::string> show_perf(const Ctx& ctx, const Node& node) {
  const int fd = ctx.tree.runtime.worker_info(ctx.worker).*kPerfFds[node.arg];
  uint64_t value = 0;
  if (fd < 0 || ::read(fd, &value, sizeof(value)) != sizeof(value)) {
    return line("unavailable");  // no such counter on this machine (probed at start)
  }
  return line(value);
}

Result<std::string> show_worker_counter(const Ctx& ctx, const Node& node) {
  return line(worker_values(ctx.tree.runtime.worker_stats(ctx.worker))[node.arg]);
}

const Dir& worker_dir() {
  static const Dir dir = [] {
    Dir d{.nodes = {{.name = "cpu", .show = show_cpu},
                    {.name = "cycles", .show = show_perf, .arg = 0},
                    {.name = "instructions", .show = show_perf, .arg = 1},
                    {.name = "task_clock_ns", .show = show_perf, .arg = 2}}};
    for (size_t k = 0; k < telemetry::kWorkerCounters.size(); ++k) {
      d.nodes.push_back(
          {.name = telemetry::kWorkerCounters[k].name, .show = show_worker_counter, .arg = k});
    }
    return d;
  }();
  return dir;
}

Result<std::vector<std::string>> worker_names(const Ctx& ctx) {
  std::vector<std::string> names;
  for (size_t i = 0; i < ctx.tree.runtime.worker_count(); ++i) {
    names.push_back(std::to_string(i));
  }
  return names;
}

Result<const Node*> enter_worker(Ctx& ctx, const std::string& name) {
  static const Node worker{.name = "", .dir = &worker_dir()};
  size_t index = 0;
  const char* end = name.data() + name.size();
  auto [stop, ec] = std::from_chars(name.data(), end, index);
  if (ec != std::errc{} || stop != end || index >= ctx.tree.runtime.worker_count()) {
    return nullptr;
  }
  ctx.worker = index;
  return &worker;
}

const Dir& workers_dir() {
  static const Dir dir{.nodes = {}, .names = worker_names, .enter = enter_worker};
  return dir;
}

}  // namespace

const Dir& root_dir() {
  static const Dir dir{.nodes = {
                           {.name = "metrics", .show = show_metrics},
                           {.name = "pid", .show = show_pid},
                           {.name = "reload", .store = store_reload},
                           {.name = "stats", .show = show_stats},
                           {.name = "stats.json", .show = show_stats_json},
                           {.name = "vips", .dir = &vips_dir()},
                           {.name = "warnings", .show = show_warnings},
                           {.name = "workers", .dir = &workers_dir()},
                           {.name = "xdp", .dir = &xdp_dir()},
                       }};
  return dir;
}

telemetry::Snapshot counter_snapshot(const TreeState& tree) {
  telemetry::Snapshot snapshot;
  snapshot.time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  tree.runtime.fill_snapshot(snapshot);
  // The XDP plane's counters join the daemon's when a program has pinned its maps.
  if (auto verdicts = read_verdicts(tree.pin_root); verdicts && *verdicts) {
    snapshot.xdp = telemetry::XdpRows{.pin_path = tree.pin_root,
                                      .verdicts = std::move(**verdicts),
                                      .flow_events = read_flow_events(tree.pin_root),
                                      .maps = std::nullopt};
  }
  return snapshot;
}

}  // namespace ringlb::control
