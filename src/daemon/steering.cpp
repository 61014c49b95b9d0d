#include "daemon/steering.h"

#include <bpf/bpf.h>
#include <sys/socket.h>

#include <algorithm>

namespace ringlb::daemon {

Result<void> Steering::update(const Runtime& runtime, const Config& config, uint32_t workers) {
  std::lock_guard lock(mu_);
  const auto set = runtime.vips().load();
  std::erase_if(steered_, [&](const Steered& s) {
    const auto vip = s.vip.lock();
    return !vip || std::find(set->vips.begin(), set->vips.end(), vip) == set->vips.end();
  });
  for (const auto& vip : set->vips) {
    const bool done = std::any_of(steered_.begin(), steered_.end(),
                                  [&](const Steered& s) { return s.vip.lock() == vip; });
    if (done) {
      continue;
    }
    // A socket array holds one reuseport group, so each VIP gets its own instance of
    // the program: unpinned, with the smallest flow table (it never forwards).
    xdp::LoadOptions options = xdp::load_options(config);
    options.pin_root.clear();
    options.flow_entries = 1;
    options.steer_workers = std::min<uint32_t>(workers, RINGLB_MAX_WORKERS);
    auto program = xdp::XdpProgram::load(options);
    if (!program) {
      return Error{"steer mode for vip " + vip->name() + ": " + program.error().message,
                   program.error().code};
    }
    const int sockets = program->map_fd("worker_sockets");
    for (uint32_t w = 0; w < options.steer_workers; ++w) {
      const uint64_t fd = static_cast<uint64_t>(vip->listener(w));
      if (bpf_map_update_elem(sockets, &w, &fd, BPF_ANY) != 0) {
        return system_error("steer mode for vip " + vip->name() + ": worker socket array", errno);
      }
    }
    const int prog = program->reuseport_fd();
    if (::setsockopt(vip->listener(0), SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog)) !=
        0) {
      return system_error("steer mode for vip " + vip->name() + ": SO_ATTACH_REUSEPORT_EBPF",
                          errno);
    }
    steered_.push_back(Steered{.vip = vip, .program = std::move(*program)});
  }
  return {};
}

}  // namespace ringlb::daemon
