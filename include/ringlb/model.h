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

#include "ringlb/address.h"
#include "ringlb/hash.h"

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
  std::atomic<bool> healthy{true};          // written by health checks
  // Bumped by the control plane's `shutdown`: workers reset connections established
  // under an older epoch.
  std::atomic<uint64_t> shutdown_epoch{0};

  uint64_t failures() const {
    return connect_refused.load(std::memory_order_relaxed) +
           connect_timeouts.load(std::memory_order_relaxed) +
           connect_errors.load(std::memory_order_relaxed);
  }
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
  std::vector<BackendSpec> backends;
};

}  // namespace ringlb
