// Fuzz target: the TOML config parser (parse_config). Any input either parses into a
// Config that satisfies every documented rule, or fails with an error that names the
// file; parsing the same text twice gives the same answer. Crashes, leaks and undefined
// behaviour are caught by ASan and UBSan.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "fuzz_check.h"
#include "ringlb/config/config.h"
#include "ringlb/model/maglev.h"
#include "ringlb/model/model.h"

namespace ringlb {
namespace {

constexpr std::string_view kSource = "fuzz.toml";

// The rules docs/configuration.md promises for an accepted file.
void check_accepted(const Config& config) {
  FUZZ_CHECK(is_prime(config.daemon.maglev_table_size), "table size %u",
             config.daemon.maglev_table_size);
  FUZZ_CHECK(!config.daemon.control_dir.empty() && config.daemon.control_dir.front() == '/',
             "control_dir \"%s\"", config.daemon.control_dir.c_str());
  FUZZ_CHECK(!config.vips.empty(), "a config without VIPs was accepted");
  if (config.xdp.enabled) {
    FUZZ_CHECK(!config.xdp.interface.empty(), "[xdp] without interface was accepted");
    FUZZ_CHECK(std::has_single_bit(config.xdp.flow_entries) &&
                   config.xdp.flow_entries >= kMinFlowEntries &&
                   config.xdp.flow_entries <= kMaxFlowEntries,
               "flow_entries %u", config.xdp.flow_entries);
  }
  std::set<std::string> vip_names;
  std::set<std::pair<SocketAddress, Protocol>> listens;
  for (const auto& vip : config.vips) {
    FUZZ_CHECK(is_valid_name(vip.name), "vip name \"%s\"", vip.name.c_str());
    FUZZ_CHECK(vip_names.insert(vip.name).second, "duplicate vip \"%s\"", vip.name.c_str());
    FUZZ_CHECK(vip.listen.port != 0, "vip %s listens on port 0", vip.name.c_str());
    FUZZ_CHECK(listens.insert({vip.listen, vip.protocol}).second, "two vips on %s",
               vip.listen.to_string().c_str());
    FUZZ_CHECK(vip.mode == Mode::forward || vip.protocol == Protocol::tcp,
               "udp proxy vip %s accepted", vip.name.c_str());
    FUZZ_CHECK(kConnectTimeoutRange.contains(vip.connect_timeout_ms), "connect_timeout_ms %u",
               vip.connect_timeout_ms);
    FUZZ_CHECK(kConnectRetriesRange.contains(vip.connect_retries), "connect_retries %u",
               vip.connect_retries);
    FUZZ_CHECK(kIdleTimeoutRange.contains(vip.idle_timeout_ms), "idle_timeout_ms %u",
               vip.idle_timeout_ms);
    FUZZ_CHECK(kMaxConnectionAgeRange.contains(vip.max_connection_age_ms),
               "max_connection_age_ms %u", vip.max_connection_age_ms);
    FUZZ_CHECK(!vip.backends.empty(), "vip %s has an empty pool", vip.name.c_str());
    std::set<std::string> backend_names;
    for (const auto& backend : vip.backends) {
      FUZZ_CHECK(is_valid_name(backend.name), "backend name \"%s\"", backend.name.c_str());
      FUZZ_CHECK(backend_names.insert(backend.name).second, "duplicate backend \"%s\"",
                 backend.name.c_str());
      FUZZ_CHECK(kWeightRange.contains(backend.weight), "weight %u", backend.weight);
      if (vip.mode == Mode::proxy) {
        FUZZ_CHECK(backend.address.port != 0, "proxy backend %s without port",
                   backend.name.c_str());
      } else {
        FUZZ_CHECK(backend.address.port == 0, "forward backend %s with a port",
                   backend.name.c_str());
      }
    }
  }
}

}  // namespace
}  // namespace ringlb

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringlb;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto first = parse_config(text, kSource);
  const auto second = parse_config(text, kSource);
  FUZZ_CHECK(first.ok() == second.ok(), "parsing is not deterministic");
  if (!first) {
    const std::string& message = first.error().message;
    FUZZ_CHECK(message.starts_with(std::string(kSource) + ":"),
               "error does not name the file: \"%s\"", message.c_str());
    FUZZ_CHECK(message == second.error().message, "error messages differ");
    return 0;
  }
  check_accepted(*first);
  return 0;
}
