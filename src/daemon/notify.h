// systemd's service notifications (sd_notify(3)) without libsystemd: one datagram to the
// AF_UNIX socket named by $NOTIFY_SOCKET. The unit is Type=notify with WatchdogSec=:
// READY=1 once every worker serves, RELOADING=1 / READY=1 around a reload, STOPPING=1 at
// drain, and WATCHDOG=1 while every worker's loop keeps ticking. Outside systemd
// ($NOTIFY_SOCKET unset) nothing is sent.
#pragma once

#include <cstdint>
#include <string_view>

namespace ringlb::daemon {

// Sends `state` ("READY=1\nSTATUS=..."); failures are ignored, as sd_notify's are.
void notify(std::string_view state);

// The watchdog interval systemd set for this process ($WATCHDOG_USEC, when $WATCHDOG_PID
// is unset or names this process), in microseconds; 0 when there is none.
uint64_t watchdog_usec();

}  // namespace ringlb::daemon
