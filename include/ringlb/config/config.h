// The TOML configuration file: loading, validation and the resulting Config.
//
// Every error names the file, the line and column, the key and what was expected, e.g.
//   ringlb.toml:12:10: vip[0].backend[1].weight: expected an integer in 0..10000, got 20000
// A config with any error is rejected whole: nothing starts, nothing changes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/abi/hash.h"
#include "ringlb/model/maglev.h"
#include "ringlb/model/model.h"
#include "ringlb/model/pool.h"
#include "ringlb/result.h"

namespace ringlb {

// Where ringlbd mounts its control filesystem, and where `ringlb` looks for it, unless
// told otherwise.
inline constexpr const char* kDefaultControlDir = "/run/ringlb";

// The connection log: one line per closed client connection (docs/running.md, "The
// connection log"). Read at start only, like metrics_listen.
enum class AccessLogFormat : uint8_t { text, json };
struct AccessLogConfig {
  std::string target;  // access_log: "" off, "journal", or an absolute file path
  AccessLogFormat format = AccessLogFormat::text;  // access_log_format
  uint32_t sample = 1;                             // log_sample: one connection in N
  uint32_t rate_limit = 0;                         // log_rate_limit: lines/s, 0: no cap
  uint32_t buffer = 4096;                          // log_buffer: records per worker
};

struct DaemonConfig {
  uint32_t workers = 0;  // 0: one per CPU
  std::string control_dir = kDefaultControlDir;
  uint32_t max_connections = 65536;  // per worker
  uint32_t drain_timeout_ms = 30000;
  uint32_t maglev_table_size = kDefaultMaglevTableSize;
  // SipHash key for client hashing (hash_seed, 32 hex digits). When the config leaves
  // it out, a fixed public default is used: stable across restarts, but not secret.
  ringlb_hash_key hash_key{};
  bool hash_seed_set = false;
  // metrics_listen: where ringlbd serves GET /metrics (Prometheus) over HTTP, ip:port;
  // nullopt (absent or "") serves none. Read at start only: a reload that changes it is
  // logged and ignored until ringlbd restarts.
  std::optional<SocketAddress> metrics_listen;
  // control_group: a group whose members may read the control tree (not write it); empty:
  // root alone. ringlbd looks the name up at start; an unknown group is logged and the
  // tree stays root-only (it fails closed). Read at start only, like metrics_listen.
  std::string control_group;
  AccessLogConfig access_log;
};

// [xdp] flow_entries: the default equals RINGLB_DEFAULT_FLOW_ENTRIES (src/xdp checks it);
// the least is a whole number of buckets of RINGLB_FLOW_WAYS flows.
inline constexpr uint32_t kDefaultFlowEntries = 65536;
inline constexpr uint32_t kMinFlowEntries = 8;
inline constexpr uint32_t kMaxFlowEntries = 1u << 22;
// [xdp] flow_idle_timeout_ms: 1 s to 1 day, 60 s by default.
inline constexpr uint32_t kDefaultFlowIdleMs = 60000;
inline constexpr uint32_t kMinFlowIdleMs = 1000;
inline constexpr uint32_t kMaxFlowIdleMs = 86400000;
// [xdp] icmp_too_big_rate: ICMP "too big" replies per second per CPU (bursts of up to
// kIcmpTooBigBurst); 0 sends none.
inline constexpr uint32_t kDefaultIcmpTooBigRate = 1000;
inline constexpr uint32_t kMaxIcmpTooBigRate = 1000000;
inline constexpr uint32_t kIcmpTooBigBurst = 50;

// How the XDP program attaches: in the driver (native) or in the generic hook.
enum class XdpAttach : uint8_t { native, generic };

// [xdp]: the XDP data plane. Present: forward-mode VIPs are balanced at the NIC and, unless
// steer = false, proxy VIPs are steered to the worker that owns the client's hash.
struct XdpConfig {
  bool enabled = false;   // the config has an [xdp] table
  std::string interface;  // required when enabled
  XdpAttach attach = XdpAttach::native;
  bool steer = true;
  // Forward-mode flow table: flows per CPU, a power of two in kMinFlowEntries..
  // kMaxFlowEntries (16 bytes each). More flows keep more established connections on
  // their backend through pool changes; fewer keep the table in cache.
  uint32_t flow_entries = kDefaultFlowEntries;
  // An established flow idle this long may give its entry to a new flow when its bucket
  // is full and holds no embryonic (SYN-only) entry; until then a new flow in that bucket
  // gets none, so a SYN flood cannot push out live flows.
  uint32_t flow_idle_timeout_ms = kDefaultFlowIdleMs;
  // ICMP "fragmentation needed" / "packet too big" replies per second per CPU.
  uint32_t icmp_too_big_rate = kDefaultIcmpTooBigRate;
  // xdp.hash_seed is another name for daemon.hash_seed: one key serves both planes (the
  // proxy's ip_hash and the XDP program must agree). Giving both with different values is
  // an error; either one sets DaemonConfig::hash_key.
};

struct Config {
  std::string source;  // the file it came from
  DaemonConfig daemon;
  XdpConfig xdp;
  std::vector<VipSpec> vips;
};

// Parses and validates TOML text; `source` names it in error messages.
Result<Config> parse_config(std::string_view text, std::string_view source);
// Reads and parses the file at `path`.
Result<Config> load_config(const std::string& path);

// The pool options a config gives every VIP: its hash key and Maglev table size.
inline PoolOptions pool_options(const Config& config) {
  return PoolOptions{.hash_key = config.daemon.hash_key,
                     .maglev_table_size = config.daemon.maglev_table_size};
}

// Parses a 32-hex-digit seed into a SipHash key.
std::optional<ringlb_hash_key> parse_hash_seed(std::string_view hex);

// hash_seed is a secret: whoever knows it predicts each client's backend, worker and
// flow-table bucket. The file that holds it is treated as ssh treats a private key: it
// must not be readable or writable by group or others, and must belong to root or to
// `uid` (the user ringlbd runs as). The error names the file, its mode and owner, and the
// commands that fix it. A config without hash_seed passes (see kNoHashSeedWarning).
Result<void> check_secret_file(const std::string& path, unsigned uid);

// What ringlbd logs at every start, and `ringlb status` shows, when the config sets no
// hash_seed.
inline constexpr const char* kNoHashSeedWarning =
    "no hash_seed in the config: client hashing uses a public default key, so anyone can "
    "predict each client's backend, worker and flow-table bucket; put the output of "
    "`ringlb seed` in [daemon] hash_seed (and make the file mode 0600)";

// A new random hash_seed: 32 hexadecimal digits from getrandom(2).
Result<std::string> random_hash_seed();

}  // namespace ringlb
