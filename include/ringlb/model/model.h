// The model both data planes share: VIPs, backends and their states.
//
// A VIP is a virtual service (listen address:port, protocol, mode, policy) with a pool
// of backends. Backends have stable names (the control tree and the Maglev table are
// keyed by them), a weight 0..10000 and an admin state. The daemon turns a VipSpec into
// an immutable Pool snapshot (pool.h) and swaps snapshots atomically on change.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/abi/hash.h"
#include "ringlb/model/address.h"

namespace ringlb {

enum class Mode : uint8_t {
  proxy,    // connection-level TCP forwarding by ringlbd's workers
  forward,  // packet-level forwarding by the XDP program (IPIP/IP6IP6, DSR)
};

enum class Protocol : uint8_t { tcp, udp };

enum class AdminState : uint8_t {
  up,     // takes new connections
  drain,  // keeps established connections, takes no new ones
  down,   // takes nothing
};

enum class PolicyKind : uint8_t { round_robin, weighted, least_request, random, ip_hash };

std::optional<Mode> parse_mode(std::string_view text);
std::optional<Protocol> parse_protocol(std::string_view text);
std::optional<AdminState> parse_admin_state(std::string_view text);
std::optional<PolicyKind> parse_policy(std::string_view text);
std::string_view to_string(Mode mode);
std::string_view to_string(Protocol protocol);
std::string_view to_string(AdminState state);
std::string_view to_string(PolicyKind policy);

inline constexpr uint32_t kMaxWeight = 10000;

// Accepted ranges of a VIP's settings: the config file and the control filesystem
// check the same ones.
struct UintRange {
  uint32_t min;
  uint32_t max;
  bool contains(uint64_t v) const { return v >= min && v <= max; }
};
inline constexpr UintRange kWeightRange{0, kMaxWeight};
inline constexpr UintRange kConnectTimeoutRange{1, 3'600'000};
inline constexpr UintRange kConnectRetriesRange{0, 16};
inline constexpr UintRange kIdleTimeoutRange{0, 86'400'000};
inline constexpr UintRange kMaxConnectionAgeRange{0, 604'800'000};
inline constexpr size_t kMaxNameLength = 64;
// [vip.health] (health.h explains each setting).
inline constexpr UintRange kHealthIntervalRange{10, 3'600'000};
inline constexpr UintRange kHealthTimeoutRange{1, 3'600'000};
inline constexpr UintRange kRiseFallRange{1, 100};
inline constexpr UintRange kEjectAfterFailuresRange{0, 1000};
inline constexpr UintRange kEjectionRange{1, 3'600'000};
inline constexpr UintRange kPanicThresholdRange{0, 100};
inline constexpr UintRange kSlowStartRange{0, 3'600'000};
inline constexpr size_t kMaxHealthPayload = 1024;  // send and expect, bytes
// Slow start gives a returning backend this share of its weight first (1/1000), then
// one more tenth per tenth of slow_start_ms.
inline constexpr uint32_t kSlowStartFirstPermille = 100;

// Names of VIPs and backends become directory names in the control tree:
// 1..64 characters of [A-Za-z0-9_.-], not "." or "..".
bool is_valid_name(std::string_view name);

// A backend as configured.
struct BackendSpec {
  std::string name;
  // ip:port for proxy VIPs; for forward VIPs the port is 0 (the packet keeps its own).
  SocketAddress address;
  uint32_t weight = 1;
  AdminState state = AdminState::up;

  // Up and weighted above zero: the operator has it take new connections. Health
  // decides the rest (Backend::eligible, the XDP tables' filter).
  bool in_rotation() const { return state == AdminState::up && weight > 0; }
};

// Live counters of one backend, shared by every worker and kept across pool snapshots
// (a re-weighted backend keeps its counters). Relaxed atomics: writers are the workers'
// hot paths, readers are the control plane, and no counter orders any other memory.
struct alignas(64) BackendStats {
  std::atomic<int64_t> active{0};        // connections open now (least_request reads it)
  std::atomic<uint64_t> connections{0};  // connections established, in total
  std::atomic<uint64_t> bytes_in{0};     // client -> backend
  std::atomic<uint64_t> bytes_out{0};    // backend -> client
  std::atomic<uint64_t> connect_refused{0};
  std::atomic<uint64_t> connect_timeouts{0};
  std::atomic<uint64_t> connect_errors{0};  // other connect failures
  // Health (health.h): written by the health monitor only. `healthy` says whether
  // policies and the XDP tables may use the backend (up, slow start, or any state while
  // its pool is in panic); `health_state` is the HealthState the control tree shows.
  std::atomic<bool> healthy{true};
  std::atomic<uint8_t> health_state{0};       // HealthState::up
  std::atomic<uint32_t> ramp_permille{1000};  // slow start: share of the weight, 1/1000
  std::atomic<uint64_t> health_checks{0};     // active checks run
  std::atomic<uint64_t> health_check_failures{0};
  std::atomic<uint64_t> health_changes{0};  // health_state transitions
  std::atomic<uint64_t> ejections{0};       // passive ejections
  // Connect failures since the last success: written by the workers, reset by a
  // success and by an ejection (passive ejection, health.h).
  std::atomic<uint32_t> consecutive_failures{0};
  // Bumped by the control plane's `shutdown`: workers reset connections established
  // under an older epoch.
  std::atomic<uint64_t> shutdown_epoch{0};

  uint64_t failures() const {
    return connect_refused.load(std::memory_order_relaxed) +
           connect_timeouts.load(std::memory_order_relaxed) +
           connect_errors.load(std::memory_order_relaxed);
  }
};

// Kinds of active health check.
enum class CheckType : uint8_t {
  none,  // no active checks: passive ejection, panic threshold and slow start still apply
  tcp,   // TCP connect; optionally send a payload and expect a reply prefix
};
std::optional<CheckType> parse_check_type(std::string_view text);
std::string_view to_string(CheckType type);

// [vip.health]: how a VIP judges its backends (health.h has the state machines). Every
// VIP has one: a VIP without a [vip.health] table gets type = none (no active checks)
// and every other default, so passive ejection, the panic threshold and the rest apply
// to it as documented.
struct HealthSpec {
  CheckType type = CheckType::tcp;
  uint32_t interval_ms = 2000;        // between the starts of two checks of a backend
  uint32_t timeout_ms = 1000;         // connect plus reply, at most interval_ms
  uint32_t rise = 2;                  // consecutive passes that bring a down backend up
  uint32_t fall = 3;                  // consecutive failures that take an up backend down
  std::string send;                   // sent after connecting (may be empty)
  std::string expect;                 // the reply must start with it (empty: connecting is enough)
  uint32_t eject_after_failures = 5;  // consecutive connect failures that eject; 0: never
  uint32_t ejection_ms = 1000;        // first ejection; doubles with each further one
  uint32_t max_ejection_ms = 30000;   // cap of the doubling
  uint32_t panic_threshold = 50;      // percent: below this share of usable backends, use all
  uint32_t slow_start_ms = 0;         // ramp of a backend that comes back; 0: none
  bool operator==(const HealthSpec&) const = default;
};

// A virtual service as configured.
struct VipSpec {
  std::string name;
  SocketAddress listen;
  Protocol protocol = Protocol::tcp;
  Mode mode = Mode::proxy;
  PolicyKind policy = PolicyKind::round_robin;
  uint32_t connect_timeout_ms = 2000;
  uint32_t connect_retries = 2;        // further distinct backends tried after the first
  uint32_t idle_timeout_ms = 300000;   // 0: never
  uint32_t max_connection_age_ms = 0;  // 0: no limit
  bool send_proxy_v2 = false;
  HealthSpec health;
  std::vector<BackendSpec> backends;
};

}  // namespace ringlb
