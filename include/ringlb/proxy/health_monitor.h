// HealthMonitor: runs every VIP's active health checks and drives the health state
// machines (ringlb/health.h), on one thread of its own, off the workers' hot path.
//
// Design. The thread owns one epoll loop; a check is a non-blocking socket in it. The
// loop wakes for
//   - a check socket's readiness: connected, payload sent, reply bytes;
//   - Runtime::health_event_fd(): a worker's connect-failure streak reached its VIP's
//     eject_after_failures, or a config was applied (backends added or removed);
//   - the nearest deadline: a check due or timing out, an ejection ending, a slow-start
//     step.
// After each wake it recomputes every backend's verdict (usable, state, ramp) and writes
// it to the backend's BackendStats. When `healthy` or the ramp of any backend changed,
// it calls Runtime::republish(): the pools are rebuilt from them, so a policy's pick()
// stays O(1) and never looks at health itself, and apply's sync of forward-mode VIPs to
// the XDP tables reads the same `healthy`. A check holds one descriptor while it runs,
// so the monitor holds at most one per backend.
//
// Checks of forward-mode VIPs go to the backend host's address with the VIP's port.
// A VIP without a [vip.health] table is left alone: its backends stay healthy.
#pragma once

#include <atomic>
#include <thread>

#include "ringlb/fd.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"

namespace ringlb::proxy {

class HealthMonitor {
 public:
  explicit HealthMonitor(Runtime& runtime) : runtime_(runtime) {}
  ~HealthMonitor();  // stops the thread
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Starts the thread. Precondition: the runtime has its first config applied.
  Result<void> start();

 private:
  void run();

  Runtime& runtime_;
  UniqueFd stop_;  // eventfd: ends run()
  std::thread thread_;
};

}  // namespace ringlb::proxy
