#include <cstring>

#include "ringlb/model/model.h"
#include "ringlb/result.h"

namespace ringlb {

namespace {

template <class E, size_t N>
std::optional<E> lookup(std::string_view text, const std::pair<std::string_view, E> (&table)[N]) {
  for (const auto& [name, value] : table) {
    if (name == text) {
      return value;
    }
  }
  return std::nullopt;
}

template <class E, size_t N>
std::string_view name_of(E value, const std::pair<std::string_view, E> (&table)[N]) {
  for (const auto& [name, v] : table) {
    if (v == value) {
      return name;
    }
  }
  return "?";
}

constexpr std::pair<std::string_view, Mode> kModes[] = {{"proxy", Mode::proxy},
                                                        {"forward", Mode::forward}};
constexpr std::pair<std::string_view, Protocol> kProtocols[] = {{"tcp", Protocol::tcp},
                                                                {"udp", Protocol::udp}};
constexpr std::pair<std::string_view, AdminState> kStates[] = {
    {"up", AdminState::up}, {"drain", AdminState::drain}, {"down", AdminState::down}};
constexpr std::pair<std::string_view, PolicyKind> kPolicies[] = {
    {"round_robin", PolicyKind::round_robin},
    {"weighted", PolicyKind::weighted},
    {"least_request", PolicyKind::least_request},
    {"random", PolicyKind::random},
    {"ip_hash", PolicyKind::ip_hash}};

}  // namespace

std::optional<Mode> parse_mode(std::string_view text) {
  return lookup(text, kModes);
}
std::optional<Protocol> parse_protocol(std::string_view text) {
  return lookup(text, kProtocols);
}
std::optional<AdminState> parse_admin_state(std::string_view text) {
  return lookup(text, kStates);
}
std::optional<PolicyKind> parse_policy(std::string_view text) {
  return lookup(text, kPolicies);
}
std::string_view to_string(Mode mode) {
  return name_of(mode, kModes);
}
std::string_view to_string(Protocol protocol) {
  return name_of(protocol, kProtocols);
}
std::string_view to_string(AdminState state) {
  return name_of(state, kStates);
}
std::string_view to_string(PolicyKind policy) {
  return name_of(policy, kPolicies);
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name == "." || name == "..") {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

Error system_error(std::string_view what, int errnum) {
  return Error{std::string(what) + ": " + std::strerror(errnum), errnum};
}

}  // namespace ringlb
