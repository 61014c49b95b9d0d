// The settings an operator writes, each defined once: its name, its range or choices,
// how text parses into it, and the message a bad value gets. The config file, the
// control filesystem, `ringlb xdp` and the XDP map state all take their rules from
// here (and the whole-model checks from validate.h), so a rule and its message exist
// once. Messages say what was expected and what came: "expected an integer in
// 0..10000, got 20000"; callers put the setting's path in front
// ("vip[web].backend[b1].weight: ...").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/model/address.h"
#include "ringlb/model/model.h"
#include "ringlb/result.h"

namespace ringlb {

// An unsigned setting of a struct S: its name, its range and where it lives.
template <class S>
struct UintField {
  std::string_view name;
  UintRange range;
  uint32_t S::*member;
};

// The numeric settings of a VIP that the config and the control tree both write.
inline constexpr std::array<UintField<VipSpec>, 4> kVipUintFields{{
    {"connect_timeout_ms", kConnectTimeoutRange, &VipSpec::connect_timeout_ms},
    {"connect_retries", kConnectRetriesRange, &VipSpec::connect_retries},
    {"idle_timeout_ms", kIdleTimeoutRange, &VipSpec::idle_timeout_ms},
    {"max_connection_age_ms", kMaxConnectionAgeRange, &VipSpec::max_connection_age_ms},
}};
inline constexpr UintField<BackendSpec> kBackendWeight{"weight", kWeightRange,
                                                       &BackendSpec::weight};
// [vip.health]'s numeric settings.
inline constexpr std::array<UintField<HealthSpec>, 9> kHealthUintFields{{
    {"interval_ms", kHealthIntervalRange, &HealthSpec::interval_ms},
    {"timeout_ms", kHealthTimeoutRange, &HealthSpec::timeout_ms},
    {"rise", kRiseFallRange, &HealthSpec::rise},
    {"fall", kRiseFallRange, &HealthSpec::fall},
    {"eject_after_failures", kEjectAfterFailuresRange, &HealthSpec::eject_after_failures},
    {"ejection_ms", kEjectionRange, &HealthSpec::ejection_ms},
    {"max_ejection_ms", kEjectionRange, &HealthSpec::max_ejection_ms},
    {"panic_threshold", kPanicThresholdRange, &HealthSpec::panic_threshold},
    {"slow_start_ms", kSlowStartRange, &HealthSpec::slow_start_ms},
}};

// The VIP field called `name`, or nullptr.
const UintField<VipSpec>* vip_uint_field(std::string_view name);

// "expected an integer in 0..10000, got 20000" (or got "abc" for text that is no number).
std::string uint_error(UintRange range, std::string_view got);
// The value of `text` (decimal digits only) when it is in `range`; else uint_error.
Result<uint32_t> parse_uint(std::string_view text, UintRange range);

// The words each enumerated setting takes, in the order messages list them.
inline constexpr std::string_view kPolicyWords =
    "round_robin, weighted, least_request, random, ip_hash";
inline constexpr std::string_view kAdminStateWords = "up, drain, down";
inline constexpr std::string_view kModeWords = "proxy, forward";
inline constexpr std::string_view kProtocolWords = "tcp, udp";
inline constexpr std::string_view kCheckTypeWords = "tcp, none";
// "expected one of up, drain, down, got \"off\"".
std::string choice_error(std::string_view words, std::string_view got);
// Parses with `parse` (model.h's parse_policy, parse_admin_state, ...) or fails with
// choice_error.
template <class E>
Result<E> parse_choice(std::string_view text, std::optional<E> (*parse)(std::string_view),
                       std::string_view words) {
  if (auto value = parse(text)) {
    return *value;
  }
  return Error{choice_error(words, text), EINVAL};
}

// Names of VIPs and backends (is_valid_name): "expected 1..64 characters of
// [A-Za-z0-9_.-], got \"a/b\"".
std::string name_error(std::string_view got);
// A VIP's listen address: ip:port.
std::string listen_error(std::string_view got);
Result<SocketAddress> parse_listen(std::string_view text);
// A backend's address as a VIP of `mode` takes it: ip:port (proxy) or an IP without port
// (forward; the port is 0: the packet keeps its own).
std::string backend_address_error(Mode mode, std::string_view got);
Result<SocketAddress> parse_backend_address(std::string_view text, Mode mode);

// The VIP named `name` in `vips`, or nullptr; the backend named `name` of `vip`, or
// nullptr. Every "find by name" of specs goes through these.
VipSpec* find_vip(std::vector<VipSpec>& vips, std::string_view name);
const VipSpec* find_vip(const std::vector<VipSpec>& vips, std::string_view name);
BackendSpec* find_backend(VipSpec& vip, std::string_view name);
const BackendSpec* find_backend(const VipSpec& vip, std::string_view name);

}  // namespace ringlb
