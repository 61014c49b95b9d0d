// ControlTree: the control filesystem's semantics, without FUSE.
//
// sysfs rules: one value per file; reading shows the live value; writing applies it at
// once and succeeds only when applied; a bad value fails with EINVAL and changes
// nothing; read-only files refuse writes with EACCES. Paths start with "/" and are
// relative to the mount point. Every method may be called from several threads.
//
//   /stats                          every counter, "name value" lines (r)
//   /stats.json                     every counter, JSON (telemetry/writers.h) (r)
//   /metrics                        Prometheus text format (r)
//   /reload                         write anything: reload the config file (w)
//   /vips/<vip>/listen|mode|protocol                                      (r)
//   /vips/<vip>/policy|connect_timeout_ms|connect_retries|idle_timeout_ms|
//               max_connection_age_ms|send_proxy_v2                       (rw)
//   /vips/<vip>/backends/<b>/address|weight|state                         (rw)
//   /vips/<vip>/backends/<b>/health|active|connections|bytes_in|bytes_out|
//               failures|connect_refused|connect_timeouts|connect_errors  (r)
//   /vips/<vip>/backends/<b>/shutdown  write anything: reset its connections (w)
//   /workers/<n>/cpu|cycles|instructions|task_clock_ns|<every worker counter> (r)
//   /xdp/interface|program|pin_path                                       (r)
//   /xdp/verdicts/<verdict>     packets of that XDP verdict, all CPUs     (r)
//   /xdp/vips/<vip>/listen|protocol|mode       from the pinned maps       (r)
//   /xdp/vips/<vip>/backends/<b>/address|slots from the pinned maps       (r)
//   /xdp/vips/<vip>/backends/<b>/weight|state  read from the maps, written as
//                                              vips/<vip>/backends/<b>/... (rw)
//
// Forward-mode VIPs (served by the XDP program, not the workers) are in vips/ too, with
// listen|mode|protocol (r) and backends/<b>/address|weight|state (rw), health (r); their
// address is an IP without port. Every write is a Runtime::edit, which ringlbd's publish
// hook also writes to the pinned XDP maps (src/daemon/xdp_sync.h).
//
// Backends are created and removed configfs-style: `mkdir backends/<b>` makes a
// pending backend that takes no traffic; writing its `address` adds it to the pool
// (weight 1, state up unless written before). `rmdir backends/<b>` drains it (state
// drain, wait until no connection is left, at most drain_timeout_ms, then reset what
// remains) and removes it. A VIP's last backend cannot be removed (EBUSY): set its state
// to down instead. A forward VIP's backend is removed at once (the XDP plane counts no
// connections): set its state to drain first to let its flows finish.
//
// One table of nodes (src/control/node.h), each file with its show and store functions,
// drives stat, list, read and write. Every check that guards a change runs under the
// writer lock that applies it (inside Runtime::edit).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"

namespace ringlb::control {

class TreeState;  // node.h

enum class NodeKind { directory, file };

struct NodeInfo {
  NodeKind kind;
  bool readable = false;
  bool writable = false;
};

class ControlTree {
 public:
  // `reload` re-reads the config file and applies it (the daemon's SIGHUP path).
  // `pin_root`: where the XDP program's maps are pinned (its counters are read there).
  ControlTree(Runtime& runtime, std::function<Result<void>()> reload,
              std::string pin_root = "/sys/fs/bpf/ringlb");
  ~ControlTree();
  ControlTree(const ControlTree&) = delete;
  ControlTree& operator=(const ControlTree&) = delete;

  Result<NodeInfo> stat(std::string_view path) const;
  Result<std::vector<std::string>> list(std::string_view path) const;
  Result<std::string> read(std::string_view path) const;
  // `value` as written; one trailing newline is ignored (`echo v > file`).
  Result<void> write(std::string_view path, std::string_view value);
  Result<void> make_directory(std::string_view path);
  Result<void> remove_directory(std::string_view path);

 private:
  std::unique_ptr<TreeState> state_;
};

}  // namespace ringlb::control
