#include "daemon/xdp_sync.h"

#include <cstdio>
#include <cstring>

#include "ringlb/xdp.h"

namespace ringlb::daemon {

Result<void> XdpSync::publish(const Config& config, const Runtime::BackendHealth& healthy) {
  if (!config.xdp.enabled) {
    return {};
  }
  // Each outcome is logged when it changes, not on every apply.
  auto say = [this](bool attached, const std::string& text) {
    if (attached != attached_ || !announced_) {
      std::fprintf(stderr, "ringlbd: %s\n", text.c_str());
      attached_ = attached;
      announced_ = true;
    }
  };
  auto maps = xdp::PinnedMaps::open(pin_root_);
  if (!maps) {
    say(false, "forward VIPs have no XDP data plane: " + maps.error().message);
    return {};
  }
  auto lock = xdp::StateLock::take(pin_root_, true);
  if (!lock) {
    return lock.error();
  }
  auto pinned = xdp::read_state(maps->fds());
  if (!pinned) {
    say(false, "forward VIPs have no XDP data plane: " + pinned.error().message);
    return {};
  }
  if (config.daemon.maglev_table_size != pinned->maglev_table_size) {
    return Error{"xdp: maglev_table_size " + std::to_string(config.daemon.maglev_table_size) +
                     " differs from the attached program's " +
                     std::to_string(pinned->maglev_table_size) + " (run ringlb attach -c again)",
                 EINVAL};
  }
  if (std::memcmp(&config.daemon.hash_key, &pinned->hash_key, sizeof(ringlb_hash_key)) != 0) {
    return Error{"xdp: hash_seed differs from the attached program's (run ringlb attach -c again)",
                 EINVAL};
  }
  const xdp::XdpState state = xdp::state_from_config(config, pinned->maglev_table_size,
                                                     pinned->hash_key, pinned->steer_workers);
  const xdp::BackendFilter eligible = [&healthy](const VipSpec& vip, const BackendSpec& b) {
    return healthy(vip.name, b.name);
  };
  if (auto applied = xdp::apply_state(maps->fds(), state, eligible); !applied) {
    return Error{"xdp: " + applied.error().message, EINVAL};
  }
  say(true, "XDP maps under " + pin_root_ + " follow the config's forward VIPs");
  return {};
}

}  // namespace ringlb::daemon
