// Per-CPU counter reads and verdict names (counters.h).
#include "ringlb/xdp/counters.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "libbpf_log.h"

namespace ringlb::xdp {

Result<PerCpuCounters> PerCpuCounters::make() {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    return libbpf_error("Failed to count CPUs", cpus);
  }
  return PerCpuCounters(static_cast<size_t>(cpus));
}

Result<std::span<const ringlb_counter>> PerCpuCounters::read(int map_fd, uint32_t index) {
  std::fill(values_.begin(), values_.end(), ringlb_counter{});
  if (bpf_map_lookup_elem(map_fd, &index, values_.data()) != 0) {
    return system_error("Failed to read counter " + std::to_string(index), errno);
  }
  return std::span<const ringlb_counter>(values_);
}

ringlb_counter PerCpuCounters::sum(std::span<const ringlb_counter> values) {
  ringlb_counter total{};
  for (const auto& c : values) {
    total.packets += c.packets;
    total.bytes += c.bytes;
  }
  return total;
}

Result<std::vector<ringlb_counter>> read_counters(int map_fd, uint32_t entries) {
  auto reader = PerCpuCounters::make();
  if (!reader) {
    return reader.error();
  }
  std::vector<ringlb_counter> sums(entries);
  for (uint32_t i = 0; i < entries; ++i) {
    auto values = reader->read(map_fd, i);
    if (!values) {
      return values.error();
    }
    sums[i] = PerCpuCounters::sum(*values);
  }
  return sums;
}

uint32_t entries_of(int map_fd, uint32_t wanted) {
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &length) != 0) {
    return wanted;
  }
  return std::min(info.max_entries, wanted);
}

Result<std::vector<uint64_t>> read_event_counts(int map_fd, uint32_t entries) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    return libbpf_error("Failed to count CPUs", cpus);
  }
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  std::vector<uint64_t> sums(entries);
  for (uint32_t i = 0; i < entries; ++i) {
    if (bpf_map_lookup_elem(map_fd, &i, per_cpu.data()) != 0) {
      return system_error("Failed to read counter " + std::to_string(i), errno);
    }
    for (const uint64_t count : per_cpu) {
      sums[i] += count;
    }
  }
  return sums;
}

std::string_view flow_event_name(uint32_t event) {
  switch (static_cast<ringlb_flow_event>(event)) {
    case RINGLB_FE_INSERT_EMBRYONIC:
      return "insert_embryonic";
    case RINGLB_FE_INSERT_ESTABLISHED:
      return "insert_established";
    case RINGLB_FE_PROMOTED:
      return "promoted";
    case RINGLB_FE_EVICT_EMBRYONIC:
      return "evict_embryonic";
    case RINGLB_FE_EVICT_IDLE:
      return "evict_idle";
    case RINGLB_FE_NOT_INSERTED:
      return "not_inserted";
    case RINGLB_FE_MAX:
      break;
  }
  return "unknown";
}

std::string_view verdict_name(uint32_t verdict) {
  // A switch over the enum, not a parallel list: -Wswitch (an error here) names any
  // verdict left out, and no entry can slip by one.
  switch (static_cast<ringlb_verdict>(verdict)) {
    case RINGLB_V_PASS_NOT_IP:
      return "pass_not_ip";
    case RINGLB_V_PASS_MALFORMED:
      return "pass_malformed";
    case RINGLB_V_PASS_NOT_VIP:
      return "pass_not_vip";
    case RINGLB_V_PASS_FRAGMENT:
      return "pass_fragment";
    case RINGLB_V_PASS_ICMP:
      return "pass_icmp";
    case RINGLB_V_PASS_STEER_NO_CPU:
      return "pass_steer_no_cpu";
    case RINGLB_V_TX_FORWARD:
      return "tx_forward";
    case RINGLB_V_REDIRECT_FORWARD:
      return "redirect_forward";
    case RINGLB_V_TX_ICMP_ERROR:
      return "tx_icmp_error";
    case RINGLB_V_TX_TOO_BIG:
      return "tx_too_big";
    case RINGLB_V_REDIRECT_STEER:
      return "redirect_steer";
    case RINGLB_V_DROP_NO_BACKEND:
      return "drop_no_backend";
    case RINGLB_V_DROP_FIB:
      return "drop_fib";
    case RINGLB_V_DROP_NO_NEIGH:
      return "drop_no_neigh";
    case RINGLB_V_DROP_ERROR:
      return "drop_error";
    case RINGLB_V_DROP_TOO_BIG_NO_DF:
      return "drop_too_big_no_df";
    case RINGLB_V_DROP_TOO_BIG_LIMITED:
      return "drop_too_big_limited";
    case RINGLB_V_TX_FRAGMENT:
      return "tx_fragment";
    case RINGLB_V_MAX:
      break;
  }
  return "unknown";
}

}  // namespace ringlb::xdp
