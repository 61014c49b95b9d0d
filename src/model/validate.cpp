#include "ringlb/model/validate.h"

#include <array>
#include <map>
#include <set>
#include <tuple>

#include "ringlb/model/fields.h"

namespace ringlb {

namespace {

class Checker {
 public:
  void add(std::string path, std::string message) {
    problems_.push_back(Problem{std::move(path), std::move(message)});
  }
  template <class S>
  void range(const std::string& path, const UintField<S>& field, const S& spec) {
    const uint32_t value = spec.*field.member;
    if (!field.range.contains(value)) {
      add(path + "." + std::string(field.name), uint_error(field.range, std::to_string(value)));
    }
  }
  std::vector<Problem> take() { return std::move(problems_); }

 private:
  std::vector<Problem> problems_;
};

void check_health(Checker& check, const std::string& path, const HealthSpec& health) {
  for (const auto& field : kHealthUintFields) {
    check.range(path, field, health);
  }
  if (health.timeout_ms > health.interval_ms) {
    check.add(path + ".timeout_ms", "expected at most interval_ms (" +
                                        std::to_string(health.interval_ms) + "), got " +
                                        std::to_string(health.timeout_ms));
  }
  if (health.max_ejection_ms < health.ejection_ms) {
    check.add(path + ".max_ejection_ms", "expected at least ejection_ms (" +
                                             std::to_string(health.ejection_ms) + "), got " +
                                             std::to_string(health.max_ejection_ms));
  }
  for (const auto& [key, text] : {std::pair{"send", &health.send}, {"expect", &health.expect}}) {
    if (text->size() > kMaxHealthPayload) {
      check.add(path + "." + key, "expected at most " + std::to_string(kMaxHealthPayload) +
                                      " bytes, got " + std::to_string(text->size()));
    }
  }
  if (health.type == CheckType::none && (!health.send.empty() || !health.expect.empty())) {
    check.add(path, "send and expect need type = \"tcp\"");
  }
}

using AddressKey = std::pair<int, std::array<uint8_t, 16>>;

AddressKey address_key(const IpAddress& ip) {
  AddressKey key{ip.is_v4() ? 4 : 6, {}};
  std::copy(ip.bytes(), ip.bytes() + ip.size(), key.second.begin());
  return key;
}

}  // namespace

std::vector<Problem> validate_vips(std::span<const VipSpec> vips,
                                   const std::optional<Capacities>& capacities) {
  Checker check;
  std::set<std::string> names;
  std::set<std::tuple<SocketAddress, Protocol>> listens;
  std::set<AddressKey> addresses;
  size_t members = 0;
  for (size_t v = 0; v < vips.size(); ++v) {
    const VipSpec& vip = vips[v];
    const bool named = is_valid_name(vip.name);
    const std::string path = "vip[" + (vip.name.empty() ? std::to_string(v) : vip.name) + "]";
    if (!named) {
      check.add(path + ".name", name_error(vip.name));
    } else if (!names.insert(vip.name).second) {
      check.add(path + ".name", "duplicate vip name \"" + vip.name + "\"");
    }
    if (vip.listen.port == 0) {
      check.add(path + ".listen", listen_error(vip.listen.to_string()));
    } else if (!listens.insert({vip.listen, vip.protocol}).second) {
      check.add(path + ".listen", "another vip already listens on " + vip.listen.to_string() + "/" +
                                      std::string(to_string(vip.protocol)));
    }
    if (vip.mode == Mode::proxy && vip.protocol == Protocol::udp) {
      check.add(path + ".protocol", "proxy mode forwards TCP only; use mode = \"forward\" for UDP");
    }
    if (vip.mode == Mode::forward && vip.policy != PolicyKind::ip_hash) {
      check.add(path + ".policy", "forward mode always balances with ip_hash (Maglev), got \"" +
                                      std::string(to_string(vip.policy)) + "\"");
    }
    for (const auto& field : kVipUintFields) {
      check.range(path, field, vip);
    }
    check_health(check, path + ".health", vip.health);
    std::set<std::string> backend_names;
    std::map<AddressKey, std::string> backend_addresses;
    for (size_t i = 0; i < vip.backends.size(); ++i) {
      const BackendSpec& b = vip.backends[i];
      const bool backend_named = is_valid_name(b.name);
      const std::string bpath =
          path + ".backend[" + (b.name.empty() ? std::to_string(i) : b.name) + "]";
      if (!backend_named) {
        check.add(bpath + ".name", name_error(b.name));
      } else if (!backend_names.insert(b.name).second) {
        check.add(bpath + ".name", "duplicate backend name \"" + b.name + "\" in this vip");
      }
      check.range(bpath, kBackendWeight, b);
      if ((vip.mode == Mode::forward) != (b.address.port == 0)) {
        check.add(bpath + ".address", backend_address_error(vip.mode, b.address.to_string()));
      }
      if (vip.mode != Mode::forward) {
        continue;
      }
      ++members;
      const auto key = address_key(b.address.ip);
      if (auto [it, added] = backend_addresses.emplace(key, b.name); !added) {
        check.add(bpath + ".address",
                  b.address.ip.to_string() + " is already backend " + it->second + " of this vip");
      }
      if (b.state != AdminState::down) {
        addresses.insert(key);
      }
    }
  }
  if (capacities) {
    if (vips.size() > capacities->vips) {
      check.add("vip",
                "more than " + std::to_string(capacities->vips) + " VIPs (the maps' capacity)");
    }
    if (addresses.size() > capacities->backend_addresses) {
      check.add("vip", "more than " + std::to_string(capacities->backend_addresses) +
                           " distinct backend addresses (the maps' capacity)");
    }
    if (members > capacities->members) {
      check.add("vip", "more than " + std::to_string(capacities->members) +
                           " backends over all forward VIPs (the maps' capacity)");
    }
  }
  return check.take();
}

std::string problems_text(const std::vector<Problem>& problems) {
  std::string text;
  for (const auto& p : problems) {
    text += (text.empty() ? "" : "\n") + p.text();
  }
  return text;
}

}  // namespace ringlb
