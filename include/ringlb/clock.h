// The clocks every thread reads: monotonic (fine and coarse) and wall-clock time.
#pragma once

#include <time.h>

#include <cstdint>

namespace ringlb {

inline uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t monotonic_ns() {
  return clock_ns(CLOCK_MONOTONIC);
}

inline uint64_t monotonic_ms() {
  return monotonic_ns() / 1000000;
}

// A few ms behind monotonic_ms() and cheaper: the workers' loop clock and heartbeat.
inline uint64_t coarse_monotonic_ms() {
  return clock_ns(CLOCK_MONOTONIC_COARSE) / 1000000;
}

// CLOCK_REALTIME: for timestamps people read (the connection log).
inline uint64_t realtime_ns() {
  return clock_ns(CLOCK_REALTIME);
}

}  // namespace ringlb
