// The [daemon] and [xdp] tables of the config file.
#include <bit>

#include "checker.h"
#include "ringlb/model/maglev.h"

namespace ringlb::config_detail {

void read_daemon(Checker& check, const toml::table& table, DaemonConfig& daemon) {
  const std::string path = "daemon";
  check.check_keys(
      table, path,
      {"workers", "control_dir", "max_connections", "drain_timeout_ms", "maglev_table_size",
       "hash_seed", "metrics_listen", "control_group", "access_log", "access_log_format",
       "log_sample", "log_rate_limit", "log_buffer"});
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
  AccessLogConfig& log = daemon.access_log;
  if (auto target = check.read_string(table, table.source(), path, "access_log", false)) {
    if (target->empty() || *target == "journal" || target->front() == '/') {
      log.target = *target;
    } else {
      check.error(table.get("access_log")->source(), "daemon.access_log",
                  "expected an absolute file path or \"journal\", got \"" + *target + "\"");
    }
  }
  check.read_enum(
      table, table.source(), path, "access_log_format",
      +[](std::string_view text) -> std::optional<AccessLogFormat> {
        return text == "text"   ? std::optional(AccessLogFormat::text)
               : text == "json" ? std::optional(AccessLogFormat::json)
                                : std::nullopt;
      },
      "text, json", log.format);
  check.read_uint(table, path, "log_sample", 1, 1'000'000, log.sample);
  check.read_uint(table, path, "log_rate_limit", 0, 10'000'000, log.rate_limit);
  check.read_uint(table, path, "log_buffer", 16, 1u << 20, log.buffer);
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
  check.check_keys(table, path,
                   {"interface", "attach", "hash_seed", "steer", "flow_entries",
                    "flow_idle_timeout_ms", "icmp_too_big_rate"});
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
  check.read_uint(table, path, "flow_idle_timeout_ms", kMinFlowIdleMs, kMaxFlowIdleMs,
                  xdp.flow_idle_timeout_ms);
  check.read_uint(table, path, "icmp_too_big_rate", 0, kMaxIcmpTooBigRate, xdp.icmp_too_big_rate);
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

}  // namespace ringlb::config_detail
