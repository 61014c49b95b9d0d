// Backend health: the state machines, pure and driven by an injected clock.
//
// A VIP with a [vip.health] table (HealthSpec, model.h) judges each backend three ways:
//
//  - Active checks (the health monitor, include/ringlb/proxy/health_monitor.h, runs them): every
//    interval_ms a TCP connect, optionally a payload sent and a reply prefix expected,
//    all within timeout_ms. `fall` consecutive failures take an up backend down, `rise`
//    consecutive passes bring it back (HAProxy's rise/fall). Backends start up, so a
//    fresh daemon serves at once.
//  - Passive ejection: the workers count consecutive connect failures per backend
//    (BackendStats::consecutive_failures, reset by every success). At
//    eject_after_failures the backend is ejected for ejection_ms; each further ejection
//    without a success in between doubles that, up to max_ejection_ms (Envoy's outlier
//    detection, with a doubling instead of a linear back-off). When the time is up the
//    backend is tried again; its first established connection resets the back-off.
//  - Panic threshold (Envoy's healthy_panic_threshold): when fewer than
//    panic_threshold percent of the VIP's candidates (admin state up, weight above
//    zero) are usable, health is ignored and every candidate is used, so a wide
//    failure of the checks (or of the check target) cannot take the whole service down.
//  - Slow start: a backend that becomes usable again (after down or ejected) or that
//    is added while the daemon runs gets ramp_permille() of its weight, rising with the
//    elapsed share of slow_start_ms in tenths (at least one tenth), so a cold backend is
//    not flooded. The weighted, least_request and random policies scale weights by it;
//    round_robin ignores weights, and ip_hash keeps full weights because changing Maglev
//    weights step by step would move clients between backends at every step.
//
// Every function here is called by one thread (the health monitor) or by a test.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "ringlb/model/model.h"

namespace ringlb {

// What the control tree's `health` file shows, one word.
enum class HealthState : uint8_t {
  up,          // usable at full weight
  down,        // failed `fall` active checks in a row (whether ejected or not)
  ejected,     // passive ejection running, active checks passing (or none)
  slow_start,  // usable, weight still ramping up
};
std::string_view to_string(HealthState state);

// One backend's health.
class BackendHealth {
 public:
  // A backend added at run time ramps up from `now_ms`.
  void start_slow_start(uint64_t now_ms) { became_usable(now_ms); }
  // An active check passed or failed. Returns true when the active state changed.
  bool on_check(bool passed, const HealthSpec& spec, uint64_t now_ms);
  // The workers counted eject_after_failures consecutive connect failures.
  void eject(const HealthSpec& spec, uint64_t now_ms);
  // A connection to the backend was established: the back-off starts over.
  void on_success() { ejections_in_row_ = 0; }
  // Ends an ejection whose time is up. Returns true when it ended.
  bool tick(uint64_t now_ms);

  // Up by the active checks and not ejected.
  bool usable() const { return active_up_ && ejected_until_ms_ == 0; }
  HealthState state(const HealthSpec& spec, uint64_t now_ms) const;
  // Share of its weight the backend gets now, in 1/1000 (1000: full).
  uint32_t ramp_permille(const HealthSpec& spec, uint64_t now_ms) const;
  // When ramp_permille() next changes (0: it is not ramping).
  uint64_t next_ramp_step_ms(const HealthSpec& spec, uint64_t now_ms) const;
  // When the current ejection ends (0: not ejected).
  uint64_t ejected_until_ms() const { return ejected_until_ms_; }
  // Length of the next ejection.
  uint32_t next_ejection_ms(const HealthSpec& spec) const;

 private:
  void became_usable(uint64_t now_ms) { ramp_start_ms_ = now_ms == 0 ? 1 : now_ms; }

  bool active_up_ = true;
  uint32_t streak_ = 0;  // consecutive check results that disagree with active_up_
  uint64_t ejected_until_ms_ = 0;
  uint32_t ejections_in_row_ = 0;  // without a success in between: the back-off level
  uint64_t ramp_start_ms_ = 0;     // when slow start began; 0: none
};

// The health of one VIP's backends, with the panic threshold over them.
class VipHealth {
 public:
  struct Verdict {
    bool usable = true;  // healthy, or in panic: what BackendStats::healthy gets
    HealthState state = HealthState::up;
    uint32_t ramp_permille = 1000;
  };

  // Follows the VIP's configured backends: new names get a fresh BackendHealth (up, no
  // slow start: the caller starts one for a backend added at run time), removed names
  // are forgotten.
  void sync(const VipSpec& spec);
  // The backend named `name`, or nullptr.
  BackendHealth* find(std::string_view name);
  // Fewer than panic_threshold percent of the candidates (admin up, weight > 0) usable.
  bool panic(const VipSpec& spec) const;
  // What `backend` gets now; `panic` is panic(spec), computed once per VIP.
  Verdict verdict(const VipSpec& spec, const BackendSpec& backend, bool panic,
                  uint64_t now_ms) const;

 private:
  std::map<std::string, BackendHealth, std::less<>> backends_;
};

}  // namespace ringlb
