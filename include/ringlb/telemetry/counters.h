// The counters ringlb shows, each named once: its name, whether it is a running total
// (counter) or a level (gauge), and its help text. The proxy declares and fills its
// counters from these lists (proxy/stats.h), the writers name them from here
// (telemetry/writers.h), and the control tree makes its worker and backend files from
// them. docs/running.md ("Counters") explains each.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ringlb::telemetry {

// A running total only grows (it has a rate; Prometheus `counter`, name ending in
// `_total`); a gauge is a level (no rate; Prometheus `gauge`).
enum class Kind : uint8_t { counter, gauge };

struct CounterInfo {
  std::string_view name;
  Kind kind;
  std::string_view help;
};

// One worker's counters: X(name, kind, help). `stats` shows them as
// "worker.<n>.<name> <value>" and their sums as "proxy.<name> <value>".
#define RINGLB_WORKER_COUNTERS(X)                                                             \
  X(accepted, counter, "client connections accepted")                                         \
  X(active, gauge, "client connections open now")                                             \
  X(closed, counter, "client connections closed")                                             \
  X(rejected_overload, counter, "connections accepted at max_connections and closed at once") \
  X(accept_errors, counter, "accept failures (EMFILE, ENFILE, ...)")                          \
  X(accept_pauses, counter, "times accepting paused for lack of descriptors")                 \
  X(no_backend, counter, "clients closed because no backend was eligible or reachable")       \
  X(connect_refused, counter, "backend connects refused")                                     \
  X(connect_timeouts, counter, "backend connects timed out")                                  \
  X(connect_errors, counter, "other backend connect failures")                                \
  X(retries, counter, "connects retried on another backend")                                  \
  X(idle_timeouts, counter, "connections closed after idle_timeout_ms without traffic")       \
  X(age_closes, counter, "connections closed gracefully after max_connection_age_ms")         \
  X(age_resets, counter,                                                                      \
    "connections reset: no quiet moment within drain_timeout_ms of the age limit")            \
  X(drain_closes, counter, "connections still open when a drain deadline passed")             \
  X(resets, counter, "connections ended by an error, reset propagated")                       \
  X(bytes_in, counter, "bytes client to backend")                                             \
  X(bytes_out, counter, "bytes backend to client")                                            \
  X(splice_calls, counter, "splice(2) calls made by the pumps")                               \
  X(copy_calls, counter, "recv/send/write calls of the small-message copy path")              \
  X(pipes_created, counter, "pipes created (empty pipes are reused)")                         \
  X(shutdown_closes, counter, "connections reset by a backend's shutdown control")            \
  X(log_dropped, counter, "connection log records dropped: the log thread fell behind")

// One backend's counters: X(name, kind). `stats` shows them as
// "vip.<vip>.backend.<b>.<name> <value>"; the monotonic ones, summed over the backends
// that changes removed, as "proxy.removed_backends.<name> <value>".
#define RINGLB_BACKEND_COUNTERS(X)  \
  X(active, gauge)                  \
  X(connections, counter)           \
  X(bytes_in, counter)              \
  X(bytes_out, counter)             \
  X(connect_refused, counter)       \
  X(connect_timeouts, counter)      \
  X(connect_errors, counter)        \
  X(failures, counter)              \
  X(healthy, gauge)                 \
  X(health_checks, counter)         \
  X(health_check_failures, counter) \
  X(health_changes, counter)        \
  X(ejections, counter)

// Indexes into the value arrays below: WorkerCounter::bytes_in, BackendCounter::active.
#define RINGLB_COUNTER_ENUM(name, ...) name,
enum class WorkerCounter : size_t { RINGLB_WORKER_COUNTERS(RINGLB_COUNTER_ENUM) };
enum class BackendCounter : size_t { RINGLB_BACKEND_COUNTERS(RINGLB_COUNTER_ENUM) };
#undef RINGLB_COUNTER_ENUM

#define RINGLB_COUNTER_INFO(name, kind, help) CounterInfo{#name, Kind::kind, help},
inline constexpr std::array kWorkerCounters{RINGLB_WORKER_COUNTERS(RINGLB_COUNTER_INFO)};
#undef RINGLB_COUNTER_INFO
#define RINGLB_COUNTER_INFO(name, kind) \
  CounterInfo{#name, Kind::kind, "per backend, see docs/running.md"},
inline constexpr std::array kBackendCounters{RINGLB_BACKEND_COUNTERS(RINGLB_COUNTER_INFO)};
#undef RINGLB_COUNTER_INFO

// Values in the order of kWorkerCounters / kBackendCounters.
using WorkerValues = std::array<uint64_t, kWorkerCounters.size()>;
using BackendValues = std::array<uint64_t, kBackendCounters.size()>;

constexpr size_t index(WorkerCounter c) {
  return static_cast<size_t>(c);
}
constexpr size_t index(BackendCounter c) {
  return static_cast<size_t>(c);
}

// The index of the counter called `name` in `counters`, or nullopt.
template <size_t N>
constexpr std::optional<size_t> find_counter(const std::array<CounterInfo, N>& counters,
                                             std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (counters[i].name == name) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace ringlb::telemetry
