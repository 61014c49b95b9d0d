#include "daemon/xdp_sync.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "ringlb/xdp/xdp.h"

namespace ringlb::daemon {

namespace {

// What the maps record of `state`, as text, VIPs in name order: equal text, equal record.
std::string record_text(const xdp::XdpState& state) {
  std::vector<std::string> vips;
  for (const auto& vip : state.vips) {
    std::string text = vip.name + " " + vip.listen.to_string() + " " +
                       std::string(to_string(vip.protocol)) + " " +
                       std::string(to_string(vip.mode));
    for (const auto& b : vip.backends) {
      text += " " + b.name + "=" + b.address.to_string() + "/" + std::to_string(b.weight) + "/" +
              std::string(to_string(b.state));
    }
    vips.push_back(std::move(text));
  }
  std::sort(vips.begin(), vips.end());
  std::string out;
  for (const auto& v : vips) {
    out += v + "\n";
  }
  return out;
}

// Which backends `eligible` admits, in the state's order.
std::vector<bool> eligibility(const xdp::XdpState& state, const xdp::BackendFilter& eligible) {
  std::vector<bool> out;
  for (const auto& vip : state.vips) {
    for (const auto& b : vip.backends) {
      out.push_back(eligible(vip, b));
    }
  }
  return out;
}

// This process's user name (its uid when it has none).
std::string user_name() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? std::string(pw->pw_name) : std::to_string(::geteuid());
}

}  // namespace

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
    // Pins made by root are out of reach of ringlbd running as its own user.
    const std::string hint = maps.error().code == EACCES && ::geteuid() != 0
                                 ? " (pinned for another user: `ringlb attach --owner " +
                                       user_name() + "` gives them to this one)"
                                 : "";
    say(false, "forward VIPs have no XDP data plane: " + maps.error().message + hint);
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
  // Most applies (a proxy VIP's change, a slow-start step) leave the forward VIPs as
  // they are: then the maps are not rewritten, unless another writer (`ringlb xdp`,
  // `ringlb attach`, which know no health) has written them since.
  std::vector<bool> admitted = eligibility(state, eligible);
  if (applied_ && pinned->generation == generation_ && admitted == admitted_ &&
      record_text(*pinned) == record_text(state)) {
    return {};
  }
  if (auto applied = xdp::apply_state(maps->fds(), state, eligible); !applied) {
    applied_ = false;
    return Error{"xdp: " + applied.error().message, EINVAL};
  }
  applied_ = true;
  admitted_ = std::move(admitted);
  generation_ = pinned->generation + 1;  // what apply_state wrote, under the lock
  say(true, "XDP maps under " + pin_root_ + " follow the config's forward VIPs");
  return {};
}

}  // namespace ringlb::daemon
