#include "ringlb/config/config.h"

#include <toml++/toml.h>
#include <bit>
#include <fstream>
#include <set>
#include <sstream>

#include "checker.h"
#include "ringlb/model/fields.h"
#include "ringlb/model/maglev.h"
#include "ringlb/model/validate.h"

namespace ringlb {

namespace {

using config_detail::Checker;
using config_detail::read_daemon;
using config_detail::read_xdp;

// The default hash key when the config sets none: public, so not a secret, but stable.
constexpr ringlb_hash_key kDefaultHashKey{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

void read_backend(Checker& check, const toml::table& table, const std::string& vip_path,
                  size_t index, Mode mode, BackendSpec& backend) {
  std::string path = vip_path + ".backend[" + std::to_string(index) + "]";
  if (auto name = check.read_string(table, table.source(), path, "name", true)) {
    if (!is_valid_name(*name)) {
      check.error(table.get("name")->source(), path + ".name", name_error(*name));
    } else {
      backend.name = *name;
      path = vip_path + ".backend[" + *name + "]";
      check.place(path + ".name", table.get("name")->source());
    }
  }
  check.place(path, table.source());
  check.check_keys(table, path, {"name", "address", "weight", "state"});
  if (auto address = check.read_string(table, table.source(), path, "address", true)) {
    const auto* node = table.get("address");
    check.place(path + ".address", node->source());
    if (auto parsed = parse_backend_address(*address, mode)) {
      backend.address = *parsed;
    } else {
      check.error(node->source(), path + ".address", parsed.error().message);
    }
  }
  check.read_uint(table, path, kBackendWeight.name, kBackendWeight.range.min,
                  kBackendWeight.range.max, backend.*kBackendWeight.member);
  check.read_enum(table, table.source(), path, "state", parse_admin_state, kAdminStateWords,
                  backend.state);
}

// [vip.health]: active checks, passive ejection, panic threshold, slow start (health.h).
// What relates two settings (timeout_ms at most interval_ms, ...) is the model's
// validator's, after the whole file is read.
void read_health(Checker& check, const toml::node& node, const std::string& vip_path,
                 HealthSpec& health) {
  const std::string path = vip_path + ".health";
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    check.error(node.source(), path, "expected a [vip.health] table");
    return;
  }
  check.place(path, table->source());
  check.check_keys(*table, path,
                   {"type", "interval_ms", "timeout_ms", "rise", "fall", "send", "expect",
                    "eject_after_failures", "ejection_ms", "max_ejection_ms", "panic_threshold",
                    "slow_start_ms"});
  check.read_enum(*table, table->source(), path, "type", parse_check_type, kCheckTypeWords,
                  health.type);
  for (const auto& field : kHealthUintFields) {
    check.read_uint(*table, path, field.name, field.range.min, field.range.max,
                    health.*field.member);
  }
  for (const auto& [key, out] : {std::pair{"send", &health.send}, {"expect", &health.expect}}) {
    if (auto text = check.read_string(*table, table->source(), path, key, false)) {
      check.place(path + "." + key, table->get(key)->source());
      *out = *text;
    }
  }
}

void read_vip(Checker& check, const toml::table& table, size_t index, VipSpec& vip) {
  std::string path = "vip[" + std::to_string(index) + "]";
  if (auto name = check.read_string(table, table.source(), path, "name", true)) {
    if (!is_valid_name(*name)) {
      check.error(table.get("name")->source(), path + ".name", name_error(*name));
    } else {
      vip.name = *name;
      path = "vip[" + *name + "]";
      check.place(path + ".name", table.get("name")->source());
    }
  }
  check.place(path, table.source());
  check.check_keys(
      table, path,
      {"name", "listen", "protocol", "mode", "policy", "connect_timeout_ms", "connect_retries",
       "idle_timeout_ms", "max_connection_age_ms", "send_proxy_v2", "health", "backend"});
  if (auto listen = check.read_string(table, table.source(), path, "listen", true)) {
    check.place(path + ".listen", table.get("listen")->source());
    if (auto parsed = parse_listen(*listen)) {
      vip.listen = *parsed;
    } else {
      check.error(table.get("listen")->source(), path + ".listen", parsed.error().message);
    }
  }
  check.read_enum(table, table.source(), path, "protocol", parse_protocol, kProtocolWords,
                  vip.protocol);
  check.read_enum(table, table.source(), path, "mode", parse_mode, kModeWords, vip.mode);
  check.read_enum(table, table.source(), path, "policy", parse_policy, kPolicyWords, vip.policy);
  if (vip.mode == Mode::forward && table.get("policy") == nullptr) {
    vip.policy = PolicyKind::ip_hash;  // forward mode's only policy is its default
  }
  for (const auto& field : kVipUintFields) {
    check.read_uint(table, path, field.name, field.range.min, field.range.max, vip.*field.member);
  }
  check.read_bool(table, path, "send_proxy_v2", vip.send_proxy_v2);
  if (const toml::node* health = table.get("health")) {
    read_health(check, *health, path, vip.health);
  } else {
    // No table: no active checks, the other defaults (passive ejection among them).
    vip.health.type = CheckType::none;
  }

  const toml::node* backends = table.get("backend");
  const toml::array* list = backends != nullptr ? backends->as_array() : nullptr;
  if (backends != nullptr && (list == nullptr || !list->is_array_of_tables())) {
    check.error(backends->source(), path + ".backend",
                "expected [[vip.backend]] tables, got another kind of value");
    return;
  }
  if (list == nullptr || list->empty()) {
    check.error(table.source(), path, "empty pool: add at least one [[vip.backend]]");
    return;
  }
  for (size_t i = 0; i < list->size(); ++i) {
    BackendSpec backend;
    read_backend(check, *list->get(i)->as_table(), path, i, vip.mode, backend);
    vip.backends.push_back(std::move(backend));
  }
}

Config read_config(Checker& check, const toml::table& root, std::string_view source) {
  Config config;
  config.source = std::string(source);
  config.daemon.hash_key = kDefaultHashKey;
  check.check_keys(root, "", {"daemon", "xdp", "vip"});
  if (const toml::node* daemon = root.get("daemon")) {
    if (const auto* table = daemon->as_table()) {
      read_daemon(check, *table, config.daemon);
    } else {
      check.error(daemon->source(), "daemon", "expected a [daemon] table");
    }
  }
  // After [daemon], so that xdp.hash_seed is checked against daemon.hash_seed.
  if (const toml::node* xdp = root.get("xdp")) {
    if (const auto* table = xdp->as_table()) {
      read_xdp(check, *table, config.daemon, config.xdp);
    } else {
      check.error(xdp->source(), "xdp", "expected an [xdp] table");
    }
  }
  const toml::node* vips = root.get("vip");
  const toml::array* list = vips != nullptr ? vips->as_array() : nullptr;
  if (vips != nullptr && (list == nullptr || !list->is_array_of_tables())) {
    check.error(vips->source(), "vip", "expected [[vip]] tables");
    return config;
  }
  if (list == nullptr || list->empty()) {
    check.error(root.source(), "vip", "no [[vip]] defined: nothing to balance");
    return config;
  }
  for (size_t i = 0; i < list->size(); ++i) {
    VipSpec vip;
    read_vip(check, *list->get(i)->as_table(), i, vip);
    config.vips.push_back(std::move(vip));
  }
  // Duplicates, relations between settings, forward-mode rules: the model's validator,
  // the same one `ringlb xdp`, the control filesystem and the XDP maps use.
  check.validate(config.vips, root.source());
  return config;
}

}  // namespace

Result<Config> parse_config(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << source << ":" << e.source().begin.line << ":" << e.source().begin.column
        << ": syntax error: " << e.description();
    return Error{out.str()};
  }
  Checker check(source);
  Config config = read_config(check, root, source);
  if (!check.ok()) {
    return Error{check.message()};
  }
  return config;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return system_error("cannot read config " + path, errno);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace ringlb
