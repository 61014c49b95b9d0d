// ringlb stats: every counter of the proxy and of the XDP data plane, with per-second
// rates between two samples.
//
//   ringlb stats [--interval S [--count N]] [--json] [--control-dir D] [--pin-path P]
//
// Without --interval: one sample, counters only. With --interval S: a sample, S seconds,
// another, and the counters with their rates; --count N repeats that N times. --json
// prints one JSON object per sample (one per line; schema: tests/cli/stats.schema.json).
// A source that is absent is reported as such; exit 1 only when both are absent.
#include "stats.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "commands.h"
#include "ringlb/abi/xdp_abi.h"
#include "ringlb/config/config.h"
#include "ringlb/fd.h"
#include "ringlb/telemetry/writers.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::cli {

bool control_fs_mounted(const std::string& dir) {
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(dir, ec);
  const std::string want = ec ? dir : canonical.string();
  std::ifstream mounts("/proc/mounts");
  std::string device, point, type;
  std::string rest;
  while (mounts >> device >> point >> type && std::getline(mounts, rest)) {
    if (point == want && type.rfind("fuse", 0) == 0) {
      return true;
    }
  }
  return false;
}

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

Source absent(const std::string& location, std::string error) {
  return Source{.available = false, .location = location, .error = std::move(error), .tables = {}};
}

}  // namespace

// ---- proxy: <control_dir>/stats.json ----

Source read_proxy_source(const std::string& control_dir) {
  if (!control_fs_mounted(control_dir)) {
    return absent(control_dir,
                  "no control filesystem mounted at " + control_dir +
                      " (is ringlbd running? give its control_dir with --control-dir)");
  }
  const std::string path = control_dir + "/stats.json";
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    std::string error = "cannot read " + path + ": " + errno_text(err);
    if (err == EACCES || err == EPERM) {
      error += " (the control filesystem is root-only: run as root)";
    } else if (err == ENOTCONN) {
      error += " (ringlbd has exited; its mount is stale)";
    }
    return absent(control_dir, std::move(error));
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto rows = telemetry::parse_stats_json(text.str());
  if (!rows) {
    return absent(control_dir, "cannot read " + path + ": " + rows.error().message);
  }
  return Source{.available = true, .location = control_dir, .error = {}, .tables = tables(*rows)};
}

namespace {

// ---- XDP: the pinned maps ----

std::string address_text(const uint32_t addr[4], uint32_t family) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (family == RINGLB_FAMILY_V4) {
    inet_ntop(AF_INET, &addr[0], buf, sizeof(buf));
  } else if (family == RINGLB_FAMILY_V6) {
    inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  }
  return buf;
}

using xdp::PerCpuCounters;

telemetry::Packets packets(const ringlb_counter& c) {
  return telemetry::Packets{.packets = c.packets, .bytes = c.bytes};
}

// The counter maps and the maps that name their entries.
struct CounterMaps {
  UniqueFd verdicts, vip_stats, backend_stats, vips, backends;
};

// Opens the maps; the error says why one is missing.
Result<CounterMaps> open_counter_maps(const std::string& pin_path) {
  CounterMaps maps;
  const std::pair<const char*, UniqueFd*> wanted[] = {{"verdict_stats", &maps.verdicts},
                                                      {"vip_stats", &maps.vip_stats},
                                                      {"backend_stats", &maps.backend_stats},
                                                      {"vips", &maps.vips},
                                                      {"backends", &maps.backends}};
  for (const auto& [name, fd] : wanted) {
    const std::string path = pin_path + "/" + name;
    fd->reset(bpf_obj_get(path.c_str()));
    if (fd->valid()) {
      continue;
    }
    const int err = errno;
    if (err == ENOENT) {
      return Error{"no XDP program pinned under " + pin_path + " (no " + name +
                   " map; run ringlb attach, or give --pin-path)"};
    }
    if (err == EPERM || err == EACCES) {
      return Error{"cannot open " + path + ": " + errno_text(err) +
                   " (reading BPF maps needs root: CAP_BPF and CAP_SYS_ADMIN)"};
    }
    return Error{"cannot open " + path + ": " + errno_text(err)};
  }
  return maps;
}

// Verdicts summed over CPUs, and every verdict summed per CPU.
Result<void> read_verdicts(int fd, PerCpuCounters& reader, telemetry::XdpRows& rows) {
  std::vector<telemetry::Packets> per_cpu(reader.cpus());
  // An older program's pins count fewer verdicts: those it has are shown.
  const uint32_t verdicts = xdp::entries_of(fd, RINGLB_V_MAX);
  for (uint32_t v = 0; v < verdicts; ++v) {
    auto values = reader.read(fd, v);
    if (!values) {
      return Error{"cannot read verdict_stats: " + errno_text(values.error().code)};
    }
    for (size_t cpu = 0; cpu < values->size(); ++cpu) {
      per_cpu[cpu].packets += (*values)[cpu].packets;
      per_cpu[cpu].bytes += (*values)[cpu].bytes;
    }
    rows.verdicts.push_back({.verdict = std::string(xdp::verdict_name(v)),
                             .counters = packets(PerCpuCounters::sum(*values))});
  }
  for (size_t cpu = 0; cpu < per_cpu.size(); ++cpu) {
    rows.maps->cpus.push_back({.cpu = static_cast<uint32_t>(cpu), .counters = per_cpu[cpu]});
  }
  return {};
}

// Names from the state maps (what `ringlb attach` and `ringlb xdp` record): VIP id ->
// name, backend address -> "vip/backend" of every VIP that has it. Maps pinned by an
// older ringlb have none: rows then go by address alone.
struct PinnedNames {
  std::map<uint32_t, std::string> vips;
  std::map<std::string, std::string> backends;
};

PinnedNames pinned_names(const std::string& pin_path) {
  PinnedNames names;
  auto maps = xdp::PinnedMaps::open(pin_path);
  auto state = maps ? xdp::read_state(maps->fds()) : Result<xdp::XdpState>(maps.error());
  if (!state) {
    return names;
  }
  for (const auto& vip : state->vips) {
    if (auto id = xdp::pinned_vip_id(maps->fds(), vip)) {
      names.vips[*id] = vip.name;
    }
    for (const auto& b : vip.backends) {
      std::string& list = names.backends[b.address.ip.to_string()];
      list += (list.empty() ? "" : ",") + vip.name + "/" + b.name;
    }
  }
  return names;
}

// Every key of the vips hash map, by vip id.
void read_vips(const CounterMaps& maps, PerCpuCounters& reader, const PinnedNames& names,
               std::vector<telemetry::XdpVipRow>& rows) {
  ringlb_vip_key key{}, next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(maps.vips.get(), previous, &next) == 0) {
    key = next;
    previous = &key;
    ringlb_vip_info info{};
    if (bpf_map_lookup_elem(maps.vips.get(), &key, &info) != 0) {
      continue;
    }
    const auto values = reader.read(maps.vip_stats.get(), info.vip_id);
    if (!values) {
      continue;
    }
    std::string address = address_text(key.addr, key.family);
    if (key.family == RINGLB_FAMILY_V6) {
      address = "[" + address + "]";
    }
    address += ":" + std::to_string(ntohs(key.port)) + (key.proto == IPPROTO_UDP ? "/udp" : "/tcp");
    const auto named = names.vips.find(info.vip_id);
    rows.push_back({.vip_id = info.vip_id,
                    .address = std::move(address),
                    .name = named != names.vips.end() ? named->second : "",
                    .mode = info.mode == RINGLB_MODE_FORWARD ? "forward" : "steer",
                    .counters = packets(PerCpuCounters::sum(*values))});
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.vip_id < b.vip_id; });
}

// Every id of the backends array whose family is set.
void read_backends(const CounterMaps& maps, PerCpuCounters& reader, const PinnedNames& names,
                   std::vector<telemetry::XdpBackendRow>& rows) {
  for (uint32_t id = 0; id < RINGLB_MAX_BACKENDS; ++id) {
    ringlb_backend backend{};
    if (bpf_map_lookup_elem(maps.backends.get(), &id, &backend) != 0 ||
        backend.family == RINGLB_FAMILY_NONE) {
      continue;
    }
    const auto values = reader.read(maps.backend_stats.get(), id);
    if (!values) {
      continue;
    }
    std::string address = address_text(backend.addr, backend.family);
    const auto named = names.backends.find(address);
    rows.push_back({.backend_id = id,
                    .address = std::move(address),
                    .names = named != names.backends.end() ? named->second : "",
                    .counters = packets(PerCpuCounters::sum(*values))});
  }
}

}  // namespace

Source read_xdp_source(const std::string& pin_path) {
  auto maps = open_counter_maps(pin_path);
  if (!maps) {
    return absent(pin_path, maps.error().message);
  }
  auto reader = PerCpuCounters::make();
  if (!reader) {
    return absent(pin_path, reader.error().message);
  }
  telemetry::XdpRows rows{
      .pin_path = pin_path, .verdicts = {}, .flow_events = {}, .maps = telemetry::XdpMapRows{}};
  if (auto read = read_verdicts(maps->verdicts.get(), *reader, rows); !read) {
    return absent(pin_path, read.error().message);
  }
  // Maps pinned by a program older than flow_stats have none: the table is left out.
  if (UniqueFd flows(bpf_obj_get((pin_path + "/flow_stats").c_str())); flows.valid()) {
    auto counts = xdp::read_event_counts(flows.get(), RINGLB_FE_MAX);
    if (!counts) {
      return absent(pin_path, "cannot read flow_stats: " + counts.error().message);
    }
    for (uint32_t e = 0; e < counts->size(); ++e) {
      rows.flow_events.push_back(
          {.event = std::string(xdp::flow_event_name(e)), .count = (*counts)[e]});
    }
  }
  const PinnedNames names = pinned_names(pin_path);
  read_vips(*maps, *reader, names, rows.maps->vips);
  read_backends(*maps, *reader, names, rows.maps->backends);
  return Source{.available = true, .location = pin_path, .error = {}, .tables = tables(rows)};
}

Sample take_sample(const std::string& control_dir, const std::string& pin_path) {
  Sample sample;
  sample.time =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  sample.unix_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  sample.proxy = read_proxy_source(control_dir);
  sample.xdp = read_xdp_source(pin_path);
  return sample;
}

void compute_rates(Sample& now, const Sample& before) {
  const double elapsed = now.time - before.time;
  telemetry::add_rates(now.proxy, before.proxy, elapsed);
  telemetry::add_rates(now.xdp, before.xdp, elapsed);
}

namespace {

struct StatsOptions {
  double interval = 0;
  uint32_t count = 1;
  bool json = false;
  std::string control_dir = kDefaultControlDir;
  std::string pin_path = xdp::kDefaultPinRoot;
};

// The text shows the tables it always showed; the proxy's per-VIP health rows are in
// --json (and the control tree's stats files).
bool in_text(const Source& source, const Sample& sample, const Table& table) {
  return !(&source == &sample.proxy && table.name == "vips");
}

void print_source_text(const Sample& sample, const Source& source, const char* title, bool rates) {
  if (!source.available) {
    std::printf("%s: not available: %s\n", title, source.error.c_str());
    return;
  }
  std::printf("%s: %s\n", title, source.location.c_str());
  std::printf("  %-56s %16s%s\n", "NAME", "VALUE", rates ? "          RATE/s" : "");
  for (const auto& table : source.tables) {
    if (!in_text(source, sample, table)) {
      continue;
    }
    for (const auto& row : table.rows) {
      for (const auto& [name, value] : row.counters) {
        const std::string full = row.prefix + "." + name;
        auto rate = row.rates.find(name);
        if (rates && rate != row.rates.end()) {
          std::printf("  %-56s %16" PRIu64 " %15.2f\n", full.c_str(), value, rate->second);
        } else {
          std::printf("  %-56s %16" PRIu64 "\n", full.c_str(), value);
        }
      }
    }
  }
}

bool report(const Sample& sample, const StatsOptions& options) {
  if (options.json) {
    const std::string line = telemetry::sample_json(
        sample.unix_time,
        options.interval > 0 ? std::optional<double>(options.interval) : std::nullopt, sample.proxy,
        sample.xdp);
    std::printf("%s\n", line.c_str());
  } else {
    print_source_text(sample, sample.proxy, "proxy", options.interval > 0);
    print_source_text(sample, sample.xdp, "xdp", options.interval > 0);
  }
  std::fflush(stdout);
  return sample.proxy.available || sample.xdp.available;
}

int run_stats(const StatsOptions& options) {
  Sample before = take_sample(options.control_dir, options.pin_path);
  auto both_absent = [](const Sample& s) {
    std::fprintf(stderr, "ringlb stats: no counters to show:\n  proxy: %s\n  xdp: %s\n",
                 s.proxy.error.c_str(), s.xdp.error.c_str());
    return 1;
  };
  if (!before.proxy.available && !before.xdp.available) {
    return both_absent(before);
  }
  if (options.interval <= 0) {
    report(before, options);
    return 0;
  }
  for (uint32_t i = 0; i < options.count; ++i) {
    std::this_thread::sleep_for(std::chrono::duration<double>(options.interval));
    Sample now = take_sample(options.control_dir, options.pin_path);
    compute_rates(now, before);
    if (!options.json && i > 0) {
      std::printf("\n");
    }
    if (!report(now, options)) {
      return both_absent(now);
    }
    before = std::move(now);
  }
  return 0;
}

}  // namespace

void add_stats_command(CLI::App& app, CommandRunner& run) {
  auto options = std::make_shared<StatsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stats", "Counters of the proxy (ringlbd) and the XDP data plane, with rates per second");
  CLI::Option* interval =
      cmd->add_option("-i,--interval", options->interval,
                      "Seconds between two samples; prints rates per second (default: one "
                      "sample, no rates)")
          ->check(CLI::Range(0.01, 3600.0));
  cmd->add_option("-n,--count", options->count, "Repeat N times (with --interval)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u))
      ->needs(interval);
  cmd->add_flag("-j,--json", options->json,
                "One JSON object per sample (schema: tests/cli/stats.schema.json)");
  cmd->add_option("--control-dir", options->control_dir,
                  "Where ringlbd mounted its control filesystem")
      ->capture_default_str();
  cmd->add_option("--pin-path", options->pin_path, "bpffs directory of the pinned XDP maps")
      ->capture_default_str();
  cmd->callback([&run, options] { run = [options] { return run_stats(*options); }; });
}

}  // namespace ringlb::cli
