#include "ringlb/config/config.h"

#include <toml++/toml.h>
#include <bit>
#include <fstream>
#include <set>
#include <sstream>

#include "ringlb/model/fields.h"
#include "ringlb/model/maglev.h"
#include "ringlb/model/validate.h"

namespace ringlb {

namespace {

// The default hash key when the config sets none: public, so not a secret, but stable.
constexpr ringlb_hash_key kDefaultHashKey{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

// Collects every error in the file so an operator fixes them in one pass.
class Checker {
 public:
  explicit Checker(std::string_view source) : source_(source) {}

  void error(const toml::source_region& where, std::string_view key, std::string_view what) {
    std::ostringstream out;
    out << source_ << ":" << where.begin.line << ":" << where.begin.column << ": " << key << ": "
        << what;
    errors_.push_back(out.str());
    error_paths_.insert(std::string(key));
  }

  // Where the setting at `path` was written (the latest one, for a duplicate).
  void place(const std::string& path, const toml::source_region& where) { places_[path] = where; }

  // The model's own checks (validate.h) on what was read, each at the place of its
  // setting, or of the nearest enclosing table that was written. A setting that already
  // failed to read is not reported again.
  void validate(const std::vector<VipSpec>& vips, const toml::source_region& root) {
    for (const auto& problem : validate_vips(vips)) {
      if (error_paths_.count(problem.path) != 0) {
        continue;
      }
      std::string path = problem.path;
      auto found = places_.find(path);
      while (found == places_.end() && path.find_last_of(".[") != std::string::npos) {
        path.erase(path.find_last_of(".["));
        found = places_.find(path);
      }
      error(found != places_.end() ? found->second : root, problem.path, problem.message);
    }
  }

  bool ok() const { return errors_.empty(); }

  std::string message() const {
    std::string all;
    for (const auto& e : errors_) {
      if (!all.empty()) {
        all += '\n';
      }
      all += e;
    }
    return all;
  }

  // Rejects keys of `table` that are not in `allowed`.
  void check_keys(const toml::table& table, std::string_view path,
                  std::initializer_list<std::string_view> allowed) {
    for (auto&& [key, node] : table) {
      bool known = false;
      for (auto name : allowed) {
        known = known || key.str() == name;
      }
      if (!known) {
        std::string expected;
        for (auto name : allowed) {
          expected += expected.empty() ? "" : ", ";
          expected += name;
        }
        error(key.source(), join(path, key.str()),
              "unknown key (expected one of: " + expected + ")");
      }
    }
  }

  // Reads an integer key into `out` when present; checks the range.
  void read_uint(const toml::table& table, std::string_view path, std::string_view key,
                 uint64_t min, uint64_t max, uint32_t& out) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      return;
    }
    // Only an integer node is read: toml++ casts a float such as 1e32 to int64_t
    // unchecked, which is undefined behaviour (found by fuzz_config).
    const toml::value<int64_t>* integer = node->as_integer();
    const UintRange range{static_cast<uint32_t>(min), static_cast<uint32_t>(max)};
    place(join(path, key), node->source());
    if (integer == nullptr) {
      error(node->source(), join(path, key), uint_error(range, describe(*node)));
      return;
    }
    const int64_t value = integer->get();
    if (value < 0 || !range.contains(static_cast<uint64_t>(value))) {
      error(node->source(), join(path, key), uint_error(range, std::to_string(value)));
      return;
    }
    out = static_cast<uint32_t>(value);
  }

  void read_bool(const toml::table& table, std::string_view path, std::string_view key, bool& out) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      return;
    }
    if (!node->is_boolean()) {
      error(node->source(), join(path, key), "expected true or false, got " + describe(*node));
      return;
    }
    out = *node->value<bool>();
  }

  // Returns the string at `key`, or nullopt (with an error if it is there but not a
  // string, or if it is missing and `required`).
  std::optional<std::string> read_string(const toml::table& table,
                                         const toml::source_region& table_where,
                                         std::string_view path, std::string_view key,
                                         bool required) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      if (required) {
        error(table_where, join(path, key), "missing (required)");
      }
      return std::nullopt;
    }
    if (!node->is_string()) {
      error(node->source(), join(path, key), "expected a string, got " + describe(*node));
      return std::nullopt;
    }
    return std::string(*node->value<std::string_view>());
  }

  // Reads a string key that must be one of a fixed set of words.
  template <class E>
  void read_enum(const toml::table& table, const toml::source_region& where, std::string_view path,
                 std::string_view key, std::optional<E> (*parse)(std::string_view),
                 std::string_view expected, E& out) {
    auto text = read_string(table, where, path, key, false);
    if (!text) {
      return;
    }
    place(join(path, key), table.get(key)->source());
    auto value = parse(*text);
    if (!value) {
      error(table.get(key)->source(), join(path, key), choice_error(expected, *text));
      return;
    }
    out = *value;
  }

  static std::string join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
  }

 private:
  static std::string describe(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::table:
        return "a table";
      case toml::node_type::array:
        return "an array";
      default:
        return "a date or time";
    }
  }

  std::string source_;
  std::vector<std::string> errors_;
  std::set<std::string> error_paths_;
  std::map<std::string, toml::source_region> places_;
};

void read_daemon(Checker& check, const toml::table& table, DaemonConfig& daemon) {
  const std::string path = "daemon";
  check.check_keys(table, path,
                   {"workers", "control_dir", "max_connections", "drain_timeout_ms",
                    "maglev_table_size", "hash_seed", "metrics_listen", "control_group"});
  check.read_uint(table, path, "workers", 0, 1024, daemon.workers);
  check.read_uint(table, path, "max_connections", 1, 10'000'000, daemon.max_connections);
  check.read_uint(table, path, "drain_timeout_ms", 0, 3'600'000, daemon.drain_timeout_ms);
  check.read_uint(table, path, "maglev_table_size", 3, kMaxMaglevTableSize,
                  daemon.maglev_table_size);
  if (const auto* node = table.get("maglev_table_size");
      node != nullptr && node->is_integer() && !is_prime(daemon.maglev_table_size)) {
    check.error(node->source(), "daemon.maglev_table_size",
                "expected a prime number (" + std::to_string(kDefaultMaglevTableSize) +
                    " is the default), got " + std::to_string(daemon.maglev_table_size));
  }
  if (auto dir = check.read_string(table, table.source(), path, "control_dir", false)) {
    if (dir->empty() || dir->front() != '/') {
      check.error(table.get("control_dir")->source(), "daemon.control_dir",
                  "expected an absolute path, got \"" + *dir + "\"");
    } else {
      daemon.control_dir = *dir;
    }
  }
  if (auto group = check.read_string(table, table.source(), path, "control_group", false)) {
    const bool valid = !group->empty() && group->size() <= 32 &&
                       group->find_first_not_of(
                           "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == std::string::npos &&
                       group->front() != '-';
    if (valid) {
      daemon.control_group = *group;
    } else {
      check.error(table.get("control_group")->source(), "daemon.control_group",
                  "expected a group name (letters, digits, '_', '.', '-'; at most 32), got \"" +
                      *group + "\"");
    }
  }
  // An empty metrics_listen is the same as none: no HTTP endpoint.
  if (auto listen = check.read_string(table, table.source(), path, "metrics_listen", false);
      listen && !listen->empty()) {
    if (auto parsed = parse_listen(*listen)) {
      daemon.metrics_listen = *parsed;
    } else {
      check.error(table.get("metrics_listen")->source(), "daemon.metrics_listen",
                  parsed.error().message);
    }
  }
  if (auto seed = check.read_string(table, table.source(), path, "hash_seed", false)) {
    if (auto key = parse_hash_seed(*seed)) {
      daemon.hash_key = *key;
      daemon.hash_seed_set = true;
    } else {
      check.error(table.get("hash_seed")->source(), "daemon.hash_seed",
                  "expected 32 hexadecimal digits (a 128-bit secret)");
    }
  }
}

void read_xdp(Checker& check, const toml::table& table, DaemonConfig& daemon, XdpConfig& xdp) {
  const std::string path = "xdp";
  xdp.enabled = true;
  check.check_keys(table, path, {"interface", "attach", "hash_seed", "steer", "flow_entries"});
  if (auto name = check.read_string(table, table.source(), path, "interface", true)) {
    if (name->empty() || name->size() >= 16 || name->find('/') != std::string::npos) {
      check.error(table.get("interface")->source(), "xdp.interface",
                  "expected an interface name (1..15 characters, no '/'), got \"" + *name + "\"");
    } else {
      xdp.interface = *name;
    }
  }
  check.read_enum(
      table, table.source(), path, "attach",
      +[](std::string_view text) -> std::optional<XdpAttach> {
        if (text == "native") {
          return XdpAttach::native;
        }
        if (text == "generic") {
          return XdpAttach::generic;
        }
        return std::nullopt;
      },
      "native, generic", xdp.attach);
  check.read_bool(table, path, "steer", xdp.steer);
  check.read_uint(table, path, "flow_entries", kMinFlowEntries, kMaxFlowEntries, xdp.flow_entries);
  if (const auto* node = table.get("flow_entries");
      node != nullptr && node->is_integer() && !std::has_single_bit(xdp.flow_entries)) {
    check.error(
        node->source(), "xdp.flow_entries",
        "expected a power of two (65536 is the default), got " + std::to_string(xdp.flow_entries));
  }
  if (auto seed = check.read_string(table, table.source(), path, "hash_seed", false)) {
    const auto key = parse_hash_seed(*seed);
    if (!key) {
      check.error(table.get("hash_seed")->source(), "xdp.hash_seed",
                  "expected 32 hexadecimal digits (a 128-bit secret)");
    } else if (daemon.hash_seed_set &&
               (key->k0 != daemon.hash_key.k0 || key->k1 != daemon.hash_key.k1)) {
      check.error(table.get("hash_seed")->source(), "xdp.hash_seed",
                  "differs from daemon.hash_seed; both planes must use one key (set one of them)");
    } else {
      daemon.hash_key = *key;
      daemon.hash_seed_set = true;
    }
  }
}

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
