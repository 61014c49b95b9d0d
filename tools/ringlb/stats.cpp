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
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "commands.h"
#include "ringlb/abi/xdp_abi.h"
#include "ringlb/fd.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::cli {

const Table* Source::find(const std::string& name) const {
  for (const auto& t : tables) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

bool is_gauge(const std::string& counter) {
  static const std::set<std::string> kGauges = {"active", "cpu", "p50", "p90", "p99"};
  const auto dot = counter.rfind('.');
  return kGauges.count(dot == std::string::npos ? counter : counter.substr(dot + 1)) != 0;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

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

// ---- proxy: <control_dir>/stats ----

Row& row_for(Table& table, const std::string& key) {
  for (auto& r : table.rows) {
    if (r.key == key) {
      return r;
    }
  }
  table.rows.push_back(Row{.key = key});
  return table.rows.back();
}

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

Source read_proxy_source(const std::string& control_dir) {
  Source source{.location = control_dir};
  if (!control_fs_mounted(control_dir)) {
    source.error = "no control filesystem mounted at " + control_dir +
                   " (is ringlbd running? give its control_dir with --control-dir)";
    return source;
  }
  const std::string path = control_dir + "/stats";
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    source.error = "cannot read " + path + ": " + errno_text(err);
    if (err == EACCES || err == EPERM) {
      source.error += " (the control filesystem is root-only: run as root)";
    } else if (err == ENOTCONN) {
      source.error += " (ringlbd has exited; its mount is stale)";
    }
    return source;
  }
  // VIP names may contain dots; the tree's vips/ directory disambiguates them.
  std::vector<std::string> vip_names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(control_dir + "/vips", ec)) {
    vip_names.push_back(entry.path().filename().string());
  }
  std::sort(vip_names.begin(), vip_names.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });

  Table totals{.name = "totals", .single = true};
  totals.rows.push_back(Row{.key = "", .prefix = "proxy"});
  Table percentiles{.name = "percentiles", .single = true};
  percentiles.rows.push_back(Row{.key = "", .prefix = "proxy"});
  Table workers{.name = "workers"};
  Table backends{.name = "backends"};
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.rfind(' ');
    if (space == std::string::npos) {
      continue;
    }
    const std::string name = line.substr(0, space);
    uint64_t value = 0;
    if (std::sscanf(line.c_str() + space + 1, "%" SCNu64, &value) != 1) {
      continue;  // "unavailable" hardware counters
    }
    const auto last_dot = name.rfind('.');
    if (last_dot == std::string::npos) {
      continue;
    }
    if (name.rfind("proxy.", 0) == 0) {
      const std::string counter = name.substr(6);
      // proxy.connect_time_us.p99 is a percentile; proxy.removed_backends.<counter> is a
      // running total like proxy.<counter>.
      if (counter.find('.') != std::string::npos && counter.rfind("removed_backends.", 0) != 0) {
        percentiles.rows[0].counters[counter] = value;
      } else {
        totals.rows[0].counters[counter] = value;
      }
    } else if (name.rfind("worker.", 0) == 0) {
      const std::string index = name.substr(7, last_dot - 7);
      Row& row = row_for(workers, index);
      if (row.labels.empty()) {
        row.prefix = "worker." + index;
        row.labels.push_back({.name = "worker", .value = index, .numeric = true});
      }
      row.counters[name.substr(last_dot + 1)] = value;
    } else if (name.rfind("vip.", 0) == 0) {
      const std::string rest = name.substr(4, last_dot - 4);  // <vip>.backend.<b>
      std::string vip;
      for (const auto& v : vip_names) {
        if (rest.rfind(v + ".backend.", 0) == 0) {
          vip = v;
          break;
        }
      }
      if (vip.empty()) {
        const auto at = rest.find(".backend.");
        if (at == std::string::npos) {
          continue;
        }
        vip = rest.substr(0, at);
      }
      const std::string backend = rest.substr(vip.size() + 9);
      Row& row = row_for(backends, vip + "/" + backend);
      if (row.labels.empty()) {
        row.prefix = "vip." + vip + ".backend." + backend;
        row.labels.push_back({.name = "vip", .value = vip});
        row.labels.push_back({.name = "backend", .value = backend});
      }
      row.counters[name.substr(last_dot + 1)] = value;
    }
  }
  std::sort(workers.rows.begin(), workers.rows.end(),
            [](const Row& a, const Row& b) { return std::stoul(a.key) < std::stoul(b.key); });
  source.available = true;
  source.tables = {std::move(totals), std::move(percentiles), std::move(workers),
                   std::move(backends)};
  return source;
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

struct PerCpuReader {
  int cpus = 0;
  std::vector<ringlb_counter> values{};

  // Per-CPU values of entry `index`; false when the lookup fails.
  bool read(int fd, uint32_t index) {
    values.assign(cpus, ringlb_counter{});
    return bpf_map_lookup_elem(fd, &index, values.data()) == 0;
  }
  ringlb_counter sum() const {
    ringlb_counter total{};
    for (const auto& c : values) {
      total.packets += c.packets;
      total.bytes += c.bytes;
    }
    return total;
  }
};

void set_counter(Row& row, const ringlb_counter& c) {
  row.counters["packets"] = c.packets;
  row.counters["bytes"] = c.bytes;
}

}  // namespace

Source read_xdp_source(const std::string& pin_path) {
  Source source{.location = pin_path};
  auto open_map = [&](const char* name, UniqueFd& fd) {
    const std::string path = pin_path + "/" + name;
    fd.reset(bpf_obj_get(path.c_str()));
    if (fd.valid()) {
      return true;
    }
    const int err = errno;
    if (err == ENOENT) {
      source.error = "no XDP program pinned under " + pin_path + " (no " + name +
                     " map; run ringlb attach, or give --pin-path)";
    } else if (err == EPERM || err == EACCES) {
      source.error = "cannot open " + path + ": " + errno_text(err) +
                     " (reading BPF maps needs root: CAP_BPF and CAP_SYS_ADMIN)";
    } else {
      source.error = "cannot open " + path + ": " + errno_text(err);
    }
    return false;
  };
  UniqueFd verdicts_fd, vip_stats_fd, backend_stats_fd, vips_fd, backends_fd;
  if (!open_map("verdict_stats", verdicts_fd) || !open_map("vip_stats", vip_stats_fd) ||
      !open_map("backend_stats", backend_stats_fd) || !open_map("vips", vips_fd) ||
      !open_map("backends", backends_fd)) {
    return source;
  }
  PerCpuReader reader{.cpus = libbpf_num_possible_cpus()};
  if (reader.cpus <= 0) {
    source.error = "cannot count possible CPUs: " + errno_text(-reader.cpus);
    return source;
  }

  Table verdicts{.name = "verdicts"};
  Table cpus{.name = "cpus"};
  std::vector<ringlb_counter> per_cpu(reader.cpus);
  for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
    if (!reader.read(verdicts_fd.get(), v)) {
      source.error = "cannot read verdict_stats: " + errno_text(errno);
      return source;
    }
    for (int cpu = 0; cpu < reader.cpus; ++cpu) {
      per_cpu[cpu].packets += reader.values[cpu].packets;
      per_cpu[cpu].bytes += reader.values[cpu].bytes;
    }
    const std::string name(xdp::verdict_name(v));
    Row row{.key = name, .prefix = "xdp.verdict." + name};
    row.labels.push_back({.name = "verdict", .value = name});
    set_counter(row, reader.sum());
    verdicts.rows.push_back(std::move(row));
  }
  for (int cpu = 0; cpu < reader.cpus; ++cpu) {
    const std::string index = std::to_string(cpu);
    Row row{.key = index, .prefix = "xdp.cpu." + index};
    row.labels.push_back({.name = "cpu", .value = index, .numeric = true});
    set_counter(row, per_cpu[cpu]);
    cpus.rows.push_back(std::move(row));
  }

  // Names from the state maps (what `ringlb attach` and `ringlb xdp` record): VIP id ->
  // name, backend address -> "vip/backend" of every VIP that has it. Maps pinned by an
  // older ringlb have none: rows then go by address alone.
  std::map<uint32_t, std::string> vip_names;
  std::map<std::string, std::string> backend_names;
  if (auto maps = xdp::PinnedMaps::open(pin_path)) {
    if (auto state = xdp::read_state(maps->fds())) {
      for (const auto& vip : state->vips) {
        if (auto id = xdp::pinned_vip_id(maps->fds(), vip)) {
          vip_names[*id] = vip.name;
        }
        for (const auto& b : vip.backends) {
          std::string& names = backend_names[b.address.ip.to_string()];
          names += (names.empty() ? "" : ",") + vip.name + "/" + b.name;
        }
      }
    }
  }

  // VIPs: every key of the vips hash map.
  Table vips{.name = "vips"};
  ringlb_vip_key key{}, next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(vips_fd.get(), previous, &next) == 0) {
    key = next;
    previous = &key;
    ringlb_vip_info info{};
    if (bpf_map_lookup_elem(vips_fd.get(), &key, &info) != 0 ||
        !reader.read(vip_stats_fd.get(), info.vip_id)) {
      continue;
    }
    std::string address = address_text(key.addr, key.family);
    if (key.family == RINGLB_FAMILY_V6) {
      address = "[" + address + "]";
    }
    address += ":" + std::to_string(ntohs(key.port)) + (key.proto == IPPROTO_UDP ? "/udp" : "/tcp");
    const auto named = vip_names.find(info.vip_id);
    Row row{.key = std::to_string(info.vip_id),
            .prefix = "xdp.vip." + (named != vip_names.end() ? named->second : address)};
    row.labels.push_back({.name = "vip_id", .value = row.key, .numeric = true});
    row.labels.push_back({.name = "address", .value = address});
    if (named != vip_names.end()) {
      row.labels.push_back({.name = "name", .value = named->second});
    }
    row.labels.push_back(
        {.name = "mode", .value = info.mode == RINGLB_MODE_FORWARD ? "forward" : "steer"});
    set_counter(row, reader.sum());
    vips.rows.push_back(std::move(row));
  }
  std::sort(vips.rows.begin(), vips.rows.end(),
            [](const Row& a, const Row& b) { return std::stoul(a.key) < std::stoul(b.key); });

  // Backends: every id of the backends array whose family is set.
  Table backends{.name = "backends"};
  for (uint32_t id = 0; id < RINGLB_MAX_BACKENDS; ++id) {
    ringlb_backend backend{};
    if (bpf_map_lookup_elem(backends_fd.get(), &id, &backend) != 0 ||
        backend.family == RINGLB_FAMILY_NONE || !reader.read(backend_stats_fd.get(), id)) {
      continue;
    }
    const std::string address = address_text(backend.addr, backend.family);
    Row row{.key = std::to_string(id), .prefix = "xdp.backend." + address};
    row.labels.push_back({.name = "backend_id", .value = row.key, .numeric = true});
    row.labels.push_back({.name = "address", .value = address});
    if (const auto named = backend_names.find(address); named != backend_names.end()) {
      row.labels.push_back({.name = "names", .value = named->second});
    }
    set_counter(row, reader.sum());
    backends.rows.push_back(std::move(row));
  }
  source.available = true;
  source.tables = {std::move(verdicts), std::move(cpus), std::move(vips), std::move(backends)};
  return source;
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
  if (elapsed <= 0) {
    return;
  }
  auto one = [&](Source& to, const Source& from) {
    for (auto& table : to.tables) {
      const Table* old_table = from.find(table.name);
      for (auto& row : table.rows) {
        const Row* old_row = nullptr;
        if (old_table != nullptr) {
          for (const auto& r : old_table->rows) {
            if (r.key == row.key) {
              old_row = &r;
              break;
            }
          }
        }
        for (const auto& [name, value] : row.counters) {
          if (is_gauge(name)) {
            continue;
          }
          uint64_t old_value = 0;  // a new row counts from zero
          if (old_row != nullptr) {
            auto it = old_row->counters.find(name);
            old_value = it != old_row->counters.end() ? it->second : 0;
          }
          // A counter that went down (daemon restarted, map recreated) has no rate.
          row.rates[name] =
              value >= old_value ? static_cast<double>(value - old_value) / elapsed : 0.0;
        }
      }
    }
  };
  one(now.proxy, before.proxy);
  one(now.xdp, before.xdp);
}

namespace {

struct StatsOptions {
  double interval = 0;
  uint32_t count = 1;
  bool json = false;
  std::string control_dir = "/run/ringlb";
  std::string pin_path = xdp::kDefaultPinRoot;
};

std::string format_rate(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", rate);
  return buf;
}

std::string source_json(const Source& source, const char* location_name) {
  std::string out = "{\"available\":" + std::string(source.available ? "true" : "false") + ",\"" +
                    location_name + "\":" + json_string(source.location);
  if (!source.available) {
    return out + ",\"error\":" + json_string(source.error) + "}";
  }
  auto row_json = [](const Row& row) {
    std::string r = "{";
    for (const auto& label : row.labels) {
      r += json_string(label.name) + ":" +
           (label.numeric ? label.value : json_string(label.value)) + ",";
    }
    r += "\"counters\":{";
    bool first = true;
    for (const auto& [name, value] : row.counters) {
      r += (first ? "" : ",") + json_string(name) + ":" + std::to_string(value);
      first = false;
    }
    r += "}";
    if (!row.rates.empty()) {
      r += ",\"rates\":{";
      first = true;
      for (const auto& [name, rate] : row.rates) {
        r += (first ? "" : ",") + json_string(name) + ":" + format_rate(rate);
        first = false;
      }
      r += "}";
    }
    return r + "}";
  };
  for (const auto& table : source.tables) {
    out += "," + json_string(table.name) + ":";
    if (table.single) {
      out += row_json(table.rows.at(0));
      continue;
    }
    out += "[";
    for (size_t i = 0; i < table.rows.size(); ++i) {
      out += (i ? "," : "") + row_json(table.rows[i]);
    }
    out += "]";
  }
  return out + "}";
}

void print_json(const Sample& sample, double interval) {
  char time[32];
  std::snprintf(time, sizeof(time), "%.3f", sample.unix_time);
  std::string out = std::string("{\"time\":") + time + ",\"interval_s\":" +
                    (interval > 0 ? format_rate(interval) : std::string("null")) +
                    ",\"proxy\":" + source_json(sample.proxy, "control_dir") +
                    ",\"xdp\":" + source_json(sample.xdp, "pin_path") + "}\n";
  std::fputs(out.c_str(), stdout);
}

void print_source_text(const Source& source, const char* title, bool rates) {
  if (!source.available) {
    std::printf("%s: not available: %s\n", title, source.error.c_str());
    return;
  }
  std::printf("%s: %s\n", title, source.location.c_str());
  std::printf("  %-56s %16s%s\n", "NAME", "VALUE", rates ? "          RATE/s" : "");
  for (const auto& table : source.tables) {
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

void print_text(const Sample& sample, bool rates) {
  print_source_text(sample.proxy, "proxy", rates);
  print_source_text(sample.xdp, "xdp", rates);
}

bool report(const Sample& sample, const StatsOptions& options) {
  if (options.json) {
    print_json(sample, options.interval);
  } else {
    print_text(sample, options.interval > 0);
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
