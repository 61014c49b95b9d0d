// What one ringlbd per control_dir holds besides its listeners: the lock, the control
// mount, the metrics port and the hand-over socket, and the steps that move them from
// one daemon to the next in a hand-over (handover.h). daemon.cpp wires them.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "daemon/daemon.h"
#include "daemon/handover.h"
#include "daemon/instance_lock.h"
#include "daemon/metrics_http.h"
#include "ringlb/config/config.h"
#include "ringlb/control/fuse_fs.h"
#include "ringlb/control/tree.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"

namespace ringlb::daemon {

// The value of the SIGTERM the hand-over thread queues to this process: the main
// thread's signal loop tells a hand-over from a plain stop by it.
inline constexpr int kHandoverValue = 0x68616e64;

std::string control_dir_of(const DaemonOptions& options, const Config& config);

struct Surface {
  std::optional<InstanceLock> lock;
  std::unique_ptr<control::ControlFs> control_fs;
  MetricsHttp metrics;
  std::unique_ptr<HandoverServer> handover;
};

// Mounts the control tree (unless --no-control; a mount that fails is reported and the
// daemon serves without it) and serves metrics; false when metrics_listen cannot bind.
bool open_surface(Surface& surface, control::ControlTree& tree, const DaemonOptions& options,
                  const Config& config);

// Serves hand-over requests for this daemon's control_dir (none without its lock).
void serve_handovers(Surface& surface, const Runtime& runtime, const DaemonOptions& options,
                     const Config& config);

// The old side, once the successor accepts: stop accepting, give up the metrics port,
// the control mount and the lock, and tell the successor.
void step_down(Surface& surface, Runtime& runtime);

// The new side, once its workers accept: wait for the predecessor to step down, then
// take the lock, the control mount and the metrics port.
void take_over(Surface& surface, Handover& handover, control::ControlTree& tree,
               const DaemonOptions& options, const Config& config);

// --handover: the listeners of the ringlbd serving this control_dir; none without it.
Result<std::optional<Handover>> request_handover(const DaemonOptions& options,
                                                 const Config& config);

}  // namespace ringlb::daemon
