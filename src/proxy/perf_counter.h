// Per-thread perf_event counters of a worker (cycles, instructions, task clock), which
// the control plane reads through WorkerInfo.
#pragma once

#include <cstdint>

namespace ringlb::proxy {

// Opens counter `config` of perf type `type` (PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE)
// for the calling thread. Returns its descriptor, or -1 where the machine has none
// (virtual machines often expose no hardware counters).
int open_thread_counter(uint32_t type, uint64_t config);

}  // namespace ringlb::proxy
