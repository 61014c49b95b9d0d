#include "daemon/steering.h"

#include <algorithm>

namespace ringlb::daemon {
namespace {

// The reuseport program of `vip`'s listener group, one listener per worker, attached.
Result<xdp::ReuseportProgram> steer(const VipRuntime& vip, const Config& config, uint32_t workers) {
  auto program = xdp::ReuseportProgram::load(workers, config.daemon.hash_key);
  if (!program) {
    return program.error();
  }
  for (uint32_t w = 0; w < workers; ++w) {
    if (auto set = program->set_worker_socket(w, vip.listener(w)); !set) {
      return set.error();
    }
  }
  if (auto attached = program->attach(vip.listener(0)); !attached) {
    return attached.error();
  }
  return program;
}

}  // namespace

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
    // the program (no data-plane maps: the sk_reuseport object alone).
    auto program = steer(*vip, config, std::min<uint32_t>(workers, RINGLB_MAX_WORKERS));
    if (!program) {
      return Error{"steer mode for vip " + vip->name() + ": " + program.error().message,
                   program.error().code};
    }
    steered_.push_back(Steered{.vip = vip, .program = std::move(*program)});
  }
  return {};
}

}  // namespace ringlb::daemon
