// ringlb top: a live view of the counters `ringlb stats` shows, redrawn every interval
// with rates per second, busiest backends first.
//
//   ringlb top [--interval S] [--iterations N] [--control-dir D] [--pin-path P]
//
// Runs until Ctrl-C, or for N screens with --iterations (tests).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"
#include "stats.h"

namespace ringlb::cli {
namespace {

struct TopOptions {
  double interval = 1;
  uint32_t iterations = 0;  // 0: until interrupted
  std::string control_dir = kDefaultControlDir;
  std::string pin_path = xdp::kDefaultPinRoot;
};

uint64_t counter(const Row& row, const std::string& name) {
  auto it = row.counters.find(name);
  return it != row.counters.end() ? it->second : 0;
}

double rate(const Row& row, const std::string& name) {
  auto it = row.rates.find(name);
  return it != row.rates.end() ? it->second : 0;
}

// Rows of `table`, busiest first by the rates in `keys` (first key decides, then the next).
std::vector<const Row*> busiest(const Table* table, std::vector<std::string> keys) {
  std::vector<const Row*> rows;
  if (table == nullptr) {
    return rows;
  }
  for (const auto& r : table->rows) {
    rows.push_back(&r);
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const Row* a, const Row* b) {
    for (const auto& k : keys) {
      if (rate(*a, k) != rate(*b, k)) {
        return rate(*a, k) > rate(*b, k);
      }
    }
    return false;
  });
  return rows;
}

std::string label_text(const Row& row) {
  std::string text;
  for (const auto& l : row.labels) {
    if (l.name == "vip_id" || l.name == "backend_id" || l.name == "mode") {
      continue;
    }
    text += (text.empty() ? "" : "/") + l.value;
  }
  return text;
}

void draw(const Sample& sample, const TopOptions& options) {
  std::string screen = "\033[H\033[2J";
  char line[256];
  std::snprintf(line, sizeof(line), "ringlb top: every %.2fs (Ctrl-C quits)\n\n", options.interval);
  screen += line;
  const Source& proxy = sample.proxy;
  if (!proxy.available) {
    screen += "proxy: not available: " + proxy.error + "\n";
  } else {
    const Row& t = proxy.find("totals")->rows.at(0);
    const Row& p = proxy.find("percentiles")->rows.at(0);
    std::snprintf(line, sizeof(line),
                  "proxy %s: %llu active, %.1f conn/s, in %.1f KB/s, out %.1f KB/s, "
                  "connect p50/p99 %llu/%llu us\n",
                  proxy.location.c_str(), static_cast<unsigned long long>(counter(t, "active")),
                  rate(t, "accepted"), rate(t, "bytes_in") / 1e3, rate(t, "bytes_out") / 1e3,
                  static_cast<unsigned long long>(counter(p, "connect_time_us.p50")),
                  static_cast<unsigned long long>(counter(p, "connect_time_us.p99")));
    screen += line;
    std::snprintf(line, sizeof(line), "  %-32s %8s %10s %12s %12s %8s\n", "BACKEND", "ACTIVE",
                  "CONN/s", "IN B/s", "OUT B/s", "FAIL/s");
    screen += line;
    for (const Row* r : busiest(proxy.find("backends"), {"connections", "bytes_in", "bytes_out"})) {
      std::snprintf(line, sizeof(line), "  %-32s %8llu %10.1f %12.0f %12.0f %8.1f\n",
                    label_text(*r).c_str(), static_cast<unsigned long long>(counter(*r, "active")),
                    rate(*r, "connections"), rate(*r, "bytes_in"), rate(*r, "bytes_out"),
                    rate(*r, "failures"));
      screen += line;
    }
    std::snprintf(line, sizeof(line), "  %-32s %8s %10s %12s %12s %8s\n", "WORKER", "ACTIVE",
                  "ACCEPT/s", "IN B/s", "OUT B/s", "CPU");
    screen += line;
    for (const auto& r : proxy.find("workers")->rows) {
      std::snprintf(line, sizeof(line), "  %-32s %8llu %10.1f %12.0f %12.0f %8llu\n", r.key.c_str(),
                    static_cast<unsigned long long>(counter(r, "active")), rate(r, "accepted"),
                    rate(r, "bytes_in"), rate(r, "bytes_out"),
                    static_cast<unsigned long long>(counter(r, "cpu")));
      screen += line;
    }
  }
  screen += "\n";
  const Source& xdp = sample.xdp;
  if (!xdp.available) {
    screen += "xdp: not available: " + xdp.error + "\n";
  } else {
    screen += "xdp " + xdp.location + "\n";
    for (const char* table : {"backends", "vips", "verdicts", "cpus"}) {
      std::snprintf(line, sizeof(line), "  %-32s %14s %14s %14s\n",
                    (std::string(table) == "cpus" ? "CPU" : table), "PACKETS", "PKT/s", "B/s");
      screen += line;
      for (const Row* r : busiest(xdp.find(table), {"packets", "bytes"})) {
        if (std::string(table) == "verdicts" && counter(*r, "packets") == 0) {
          continue;
        }
        std::snprintf(line, sizeof(line), "  %-32s %14llu %14.1f %14.0f\n", label_text(*r).c_str(),
                      static_cast<unsigned long long>(counter(*r, "packets")), rate(*r, "packets"),
                      rate(*r, "bytes"));
        screen += line;
      }
    }
  }
  std::fputs(screen.c_str(), stdout);
  std::fflush(stdout);
}

int run_top(const TopOptions& options) {
  Sample before = take_sample(options.control_dir, options.pin_path);
  if (!before.proxy.available && !before.xdp.available) {
    std::fprintf(stderr, "ringlb top: no counters to show:\n  proxy: %s\n  xdp: %s\n",
                 before.proxy.error.c_str(), before.xdp.error.c_str());
    return 1;
  }
  for (uint32_t i = 0; options.iterations == 0 || i < options.iterations; ++i) {
    std::this_thread::sleep_for(std::chrono::duration<double>(options.interval));
    Sample now = take_sample(options.control_dir, options.pin_path);
    compute_rates(now, before);
    draw(now, options);
    before = std::move(now);
  }
  return 0;
}

}  // namespace

void add_top_command(CLI::App& app, CommandRunner& run) {
  auto options = std::make_shared<TopOptions>();
  CLI::App* cmd =
      app.add_subcommand("top", "Live view of proxy and XDP counters, busiest backends first");
  cmd->add_option("-i,--interval", options->interval, "Seconds between screens")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  cmd->add_option("-n,--iterations", options->iterations,
                  "Stop after N screens (default: until Ctrl-C)")
      ->check(CLI::Range(1u, 100000000u));
  cmd->add_option("--control-dir", options->control_dir,
                  "Where ringlbd mounted its control filesystem")
      ->capture_default_str();
  cmd->add_option("--pin-path", options->pin_path, "bpffs directory of the pinned XDP maps")
      ->capture_default_str();
  cmd->callback([&run, options] { run = [options] { return run_top(*options); }; });
}

}  // namespace ringlb::cli
