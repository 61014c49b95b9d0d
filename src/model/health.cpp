#include "ringlb/model/health.h"

#include <algorithm>

namespace ringlb {

std::optional<CheckType> parse_check_type(std::string_view text) {
  if (text == "none") {
    return CheckType::none;
  }
  if (text == "tcp") {
    return CheckType::tcp;
  }
  return std::nullopt;
}

std::string_view to_string(CheckType type) {
  return type == CheckType::tcp ? "tcp" : "none";
}

std::string_view to_string(HealthState state) {
  switch (state) {
    case HealthState::up:
      return "up";
    case HealthState::down:
      return "down";
    case HealthState::ejected:
      return "ejected";
    case HealthState::slow_start:
      return "slow_start";
  }
  return "?";
}

bool BackendHealth::on_check(bool passed, const HealthSpec& spec, uint64_t now_ms) {
  if (passed == active_up_) {
    streak_ = 0;
    return false;
  }
  if (++streak_ < (active_up_ ? spec.fall : spec.rise)) {
    return false;
  }
  streak_ = 0;
  const bool was_usable = usable();
  active_up_ = passed;
  if (!was_usable && usable()) {
    became_usable(now_ms);
  }
  return true;
}

uint32_t BackendHealth::next_ejection_ms(const HealthSpec& spec) const {
  uint64_t ms = spec.ejection_ms;
  for (uint32_t i = 0; i < ejections_in_row_ && ms < spec.max_ejection_ms; ++i) {
    ms *= 2;
  }
  return static_cast<uint32_t>(
      std::min<uint64_t>(ms, std::max(spec.max_ejection_ms, spec.ejection_ms)));
}

void BackendHealth::eject(const HealthSpec& spec, uint64_t now_ms) {
  ejected_until_ms_ = now_ms + next_ejection_ms(spec);
  ++ejections_in_row_;
}

bool BackendHealth::tick(uint64_t now_ms) {
  if (ejected_until_ms_ == 0 || now_ms < ejected_until_ms_) {
    return false;
  }
  ejected_until_ms_ = 0;
  if (usable()) {
    became_usable(now_ms);
  }
  return true;
}

HealthState BackendHealth::state(const HealthSpec& spec, uint64_t now_ms) const {
  // Failed active checks first: `ejected` then means that only passive ejection (a
  // guess from connect failures) keeps the backend out, which a connection that found
  // nothing else relies on (Pool::ejected).
  if (!active_up_) {
    return HealthState::down;
  }
  if (ejected_until_ms_ != 0) {
    return HealthState::ejected;
  }
  return ramp_permille(spec, now_ms) < 1000 ? HealthState::slow_start : HealthState::up;
}

uint32_t BackendHealth::ramp_permille(const HealthSpec& spec, uint64_t now_ms) const {
  if (spec.slow_start_ms == 0 || ramp_start_ms_ == 0) {
    return 1000;
  }
  const uint64_t elapsed = now_ms > ramp_start_ms_ ? now_ms - ramp_start_ms_ : 0;
  if (elapsed >= spec.slow_start_ms) {
    return 1000;
  }
  // Whole tenths of the elapsed share, at least one: the weight changes in ten steps,
  // and each step costs one republish of the pools.
  const uint64_t tenths = elapsed * 10 / spec.slow_start_ms;
  return std::max(kSlowStartFirstPermille, static_cast<uint32_t>(tenths) * 100);
}

uint64_t BackendHealth::next_ramp_step_ms(const HealthSpec& spec, uint64_t now_ms) const {
  if (spec.slow_start_ms == 0 || ramp_start_ms_ == 0) {
    return 0;
  }
  const uint64_t elapsed = now_ms > ramp_start_ms_ ? now_ms - ramp_start_ms_ : 0;
  if (elapsed >= spec.slow_start_ms) {
    return 0;
  }
  // The first elapsed time at which the count of whole tenths grows (the first tenth
  // changes nothing: the ramp starts at a tenth).
  const uint64_t tenths = std::max<uint64_t>(2, elapsed * 10 / spec.slow_start_ms + 1);
  return ramp_start_ms_ + (tenths * spec.slow_start_ms + 9) / 10;
}

void VipHealth::sync(const VipSpec& spec) {
  std::map<std::string, BackendHealth, std::less<>> next;
  for (const auto& b : spec.backends) {
    auto found = backends_.find(b.name);
    next[b.name] = found != backends_.end() ? found->second : BackendHealth();
  }
  backends_ = std::move(next);
}

BackendHealth* VipHealth::find(std::string_view name) {
  auto found = backends_.find(name);
  return found != backends_.end() ? &found->second : nullptr;
}

bool VipHealth::panic(const VipSpec& spec) const {
  uint64_t candidates = 0;
  uint64_t usable = 0;
  for (const auto& b : spec.backends) {
    if (b.state != AdminState::up || b.weight == 0) {
      continue;
    }
    ++candidates;
    auto found = backends_.find(b.name);
    usable += found == backends_.end() || found->second.usable() ? 1 : 0;
  }
  return candidates != 0 && usable * 100 < uint64_t{spec.health.panic_threshold} * candidates;
}

VipHealth::Verdict VipHealth::verdict(const VipSpec& spec, const BackendSpec& backend, bool panic,
                                      uint64_t now_ms) const {
  auto found = backends_.find(backend.name);
  if (found == backends_.end()) {
    return {};
  }
  const BackendHealth& h = found->second;
  return Verdict{.usable = panic || h.usable(),
                 .state = h.state(spec.health, now_ms),
                 .ramp_permille = h.ramp_permille(spec.health, now_ms)};
}

}  // namespace ringlb
