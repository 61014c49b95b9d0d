// The decap program (decap.h): its skeleton, and its XDP entry point on the hook. The tc
// entry point's attachment is in tc_attach.cpp.
#include "ringlb/xdp/decap.h"

#include <bpf/libbpf.h>

#include <bpf/bpf.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

#include "hook.h"
#include "libbpf_log.h"
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

}  // namespace ringlb::xdp
