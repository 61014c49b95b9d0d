// The XDP programs' per-CPU counters (struct ringlb_counter), summed over CPUs, and the
// names of the verdict counters.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ringlb/abi/xdp_abi.h"
#include "ringlb/result.h"

namespace ringlb::xdp {

// A reader of per-CPU counter arrays (BPF_MAP_TYPE_PERCPU_ARRAY of struct
// ringlb_counter): one value per possible CPU, read into a buffer it keeps.
class PerCpuCounters {
 public:
  // Fails when the number of possible CPUs cannot be read.
  static Result<PerCpuCounters> make();

  // The per-CPU values of entry `index` of `map_fd`, valid until the next read; the
  // error carries the lookup's errno.
  Result<std::span<const ringlb_counter>> read(int map_fd, uint32_t index);
  size_t cpus() const { return values_.size(); }

  static ringlb_counter sum(std::span<const ringlb_counter> values);

 private:
  explicit PerCpuCounters(size_t cpus) : values_(cpus) {}
  std::vector<ringlb_counter> values_;
};

// Per-index counters of the per-CPU array `map_fd`, summed over CPUs: entries 0 to
// `entries` - 1 (verdict_stats: index enum ringlb_verdict, RINGLB_V_MAX entries).
Result<std::vector<ringlb_counter>> read_counters(int map_fd, uint32_t entries);

// How many of `wanted` entries the array `map_fd` has: fewer when an older program
// pinned it (verdict_stats before verdicts were added); `wanted` when it cannot tell.
uint32_t entries_of(int map_fd, uint32_t wanted);

// The name of a verdict counter ("tx_forward"), for stats output; "unknown" past the
// last verdict.
std::string_view verdict_name(uint32_t verdict);

// Per-index counts of the per-CPU __u64 array `map_fd`, summed over CPUs: entries 0 to
// `entries` - 1 (flow_stats: index enum ringlb_flow_event, RINGLB_FE_MAX entries).
Result<std::vector<uint64_t>> read_event_counts(int map_fd, uint32_t entries);

// The name of a flow-table event ("evict_embryonic"); "unknown" past the last.
std::string_view flow_event_name(uint32_t event);

}  // namespace ringlb::xdp
