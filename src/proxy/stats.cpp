#include "ringlb/stats.h"

namespace ringlb {

void append_worker_stats(std::string& out, const std::string& prefix, const WorkerStats& s) {
#define RINGLB_APPEND_COUNTER(name, help) \
  out += prefix + #name + " " + std::to_string(s.name.get()) + "\n";
  RINGLB_WORKER_COUNTERS(RINGLB_APPEND_COUNTER)
#undef RINGLB_APPEND_COUNTER
}

}  // namespace ringlb
