// The decap program (decap.h): its skeleton, and its XDP entry point on the hook. The tc
// entry point's attachment is in tc_attach.cpp.
#include "ringlb/xdp/decap.h"

#include <bpf/libbpf.h>

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "hook.h"
#include "libbpf_log.h"
#include "ringlb/fd.h"
#include "ringlb/xdp/counters.h"
#include "ringlb_decap.skel.h"

namespace ringlb::xdp {
namespace {

// The name the kernel gives the XDP entry point (bpf_prog_info.name): how detach tells
// ringlb's program from another one.
constexpr std::string_view kDecapXdpName = "ringlb_decap";

}  // namespace

void SkeletonDeleter::operator()(ringlb_decap* skel) const {
  ringlb_decap__destroy(skel);
}

Result<IpPrefix> parse_prefix(std::string_view text) {
  const size_t slash = text.find('/');
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) {
    return Error{"expected an address or a prefix (192.0.2.0/24, 2001:db8::/64), got \"" +
                     std::string(text) + "\"",
                 EINVAL};
  }
  const uint32_t bits = address->is_v4() ? 32 : 128;
  IpPrefix prefix{.address = *address, .length = bits};
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    uint32_t length = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        length > bits) {
      return Error{
          "\"" + std::string(text) + "\": expected a prefix length in 0.." + std::to_string(bits),
          EINVAL};
    }
    prefix.length = length;
  }
  for (uint32_t bit = prefix.length; bit < bits; ++bit) {
    if (address->bytes()[bit / 8] & (0x80 >> (bit % 8))) {
      return Error{"\"" + std::string(text) + "\": host bits are set after /" +
                       std::to_string(prefix.length),
                   EINVAL};
    }
  }
  return prefix;
}

Result<DecapProgram> DecapProgram::load(const DecapAllow& allow) {
  LogCapture log;
  DecapProgram program;
  program.skel_.reset(ringlb_decap__open());
  if (!program.skel_) {
    return libbpf_error("Failed to open the decap program", errno, &log);
  }
  program.skel_->rodata->decap_allow_any = allow.any ? 1 : 0;
  if (const int err = ringlb_decap__load(program.skel_.get()); err != 0) {
    return libbpf_error("Failed to load the decap program", err, &log);
  }
  const uint8_t yes = 1;
  for (const auto& p : allow.prefixes) {
    int rc;
    if (p.address.is_v4()) {
      ringlb_decap_v4_key key{.prefixlen = p.length, .addr = 0};
      std::memcpy(&key.addr, p.address.bytes(), 4);
      rc = bpf_map_update_elem(bpf_map__fd(program.skel_->maps.decap_allow_v4), &key, &yes, 0);
    } else {
      ringlb_decap_v6_key key{.prefixlen = p.length, .addr = {}};
      std::memcpy(key.addr, p.address.bytes(), 16);
      rc = bpf_map_update_elem(bpf_map__fd(program.skel_->maps.decap_allow_v6), &key, &yes, 0);
    }
    if (rc != 0) {
      return system_error("Failed to add " + p.address.to_string() + "/" +
                              std::to_string(p.length) + " to the decap allowlist (at most " +
                              std::to_string(RINGLB_DECAP_ALLOW_MAX) + " per family)",
                          errno);
    }
  }
  return program;
}

Result<void> DecapProgram::attach(int ifindex, XdpAttach mode, bool replace_other) const {
  return attach_program(ifindex, fd(), mode, replace_other);
}

int DecapProgram::fd() const {
  return bpf_program__fd(skel_->progs.ringlb_decap);
}

int DecapProgram::tc_fd() const {
  return bpf_program__fd(skel_->progs.ringlb_decap_tc);
}

int DecapProgram::stats_fd() const {
  return bpf_map__fd(skel_->maps.decap_stats);
}

Result<bool> detach_decap_xdp(int ifindex) {
  return detach_named(ifindex, kDecapXdpName, "decap XDP program");
}

namespace {

// The fd of the map named `name` that program `prog_id` uses, or an invalid fd.
Result<UniqueFd> program_map(uint32_t prog_id, std::string_view name) {
  UniqueFd prog(bpf_prog_get_fd_by_id(prog_id));
  if (!prog.valid()) {
    return system_error("Failed to open program " + std::to_string(prog_id), errno);
  }
  std::vector<uint32_t> map_ids(16);
  bpf_prog_info info{};
  info.nr_map_ids = static_cast<uint32_t>(map_ids.size());
  info.map_ids = reinterpret_cast<uintptr_t>(map_ids.data());
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) {
    return system_error("Failed to read program " + std::to_string(prog_id), errno);
  }
  map_ids.resize(std::min<size_t>(info.nr_map_ids, map_ids.size()));
  for (uint32_t id : map_ids) {
    UniqueFd map(bpf_map_get_fd_by_id(id));
    bpf_map_info map_info{};
    uint32_t map_len = sizeof(map_info);
    if (map.valid() && bpf_obj_get_info_by_fd(map.get(), &map_info, &map_len) == 0 &&
        name == map_info.name) {
      return map;
    }
  }
  return UniqueFd();
}

Result<std::optional<DecapHookStats>> hook_stats(uint32_t prog_id, const char* hook) {
  if (prog_id == 0) {
    return std::optional<DecapHookStats>();
  }
  auto map = program_map(prog_id, "decap_stats");
  if (!map) {
    return map.error();
  }
  if (!map->valid()) {
    return Error{"ringlb's decap program " + std::to_string(prog_id) + " has no decap_stats map"};
  }
  auto counters = read_counters(map->get(), entries_of(map->get(), RINGLB_DV_MAX));
  if (!counters) {
    return counters.error();
  }
  return std::optional(DecapHookStats{.hook = hook, .verdicts = std::move(*counters)});
}

}  // namespace

Result<std::vector<DecapHookStats>> read_decap_stats(int ifindex) {
  auto attached = named_programs(ifindex, kDecapXdpName);
  if (!attached) {
    return attached.error();
  }
  std::vector<DecapHookStats> out;
  for (const auto& program : *attached) {
    auto stats = hook_stats(program.id, "xdp");
    if (!stats) {
      return stats.error();
    }
    out.push_back(std::move(**stats));
  }
  auto tc_id = decap_tc_program_id(ifindex);
  if (!tc_id) {
    return tc_id.error();
  }
  auto tc = hook_stats(*tc_id, "tc");
  if (!tc) {
    return tc.error();
  }
  if (*tc) {
    out.push_back(std::move(**tc));
  }
  return out;
}

std::string_view decap_verdict_name(uint32_t verdict) {
  switch (static_cast<ringlb_decap_verdict>(verdict)) {
    case RINGLB_DV_PASS:
      return "pass";
    case RINGLB_DV_DECAP:
      return "decap";
    case RINGLB_DV_PASS_MALFORMED:
      return "pass_malformed";
    case RINGLB_DV_DROP_ERROR:
      return "drop_error";
    case RINGLB_DV_PASS_UNSUPPORTED:
      return "pass_unsupported";
    case RINGLB_DV_DROP_SOURCE:
      return "drop_source";
    case RINGLB_DV_MAX:
      break;
  }
  return "unknown";
}

}  // namespace ringlb::xdp
