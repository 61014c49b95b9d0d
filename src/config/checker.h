// Checker: the config reader's error collector and typed key readers, shared by the
// readers of the [daemon] and [xdp] tables (daemon_tables.cpp) and of the VIPs
// (config.cpp). Private to src/config.
#pragma once

#include <toml++/toml.h>

#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/model/fields.h"
#include "ringlb/model/validate.h"

namespace ringlb::config_detail {

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

// The [daemon] and [xdp] tables (daemon_tables.cpp).
void read_daemon(Checker& check, const toml::table& table, DaemonConfig& daemon);
void read_xdp(Checker& check, const toml::table& table, DaemonConfig& daemon, XdpConfig& xdp);

}  // namespace ringlb::config_detail
