// ringlb status: what XDP program is attached where, the pinned maps and their sizes,
// and whether ringlbd is serving (its control filesystem).
//
//   ringlb status [--pin-path P] [--control-dir D]
//
// Sections:
//   xdp <dev>: <mode> id <prog id> <name>   one line per interface with a program
//   xdp: no program attached                when no interface has one
//   map <name>: <type> max_entries N key K value V [entries E]   pinned under P
//   daemon: control filesystem at D (W workers) | daemon: not running (...)
// Exit 0 whatever is found; 1 only when the kernel cannot be asked (not root).
#include <net/if.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include "commands.h"
#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"
#include "stats.h"

namespace ringlb::cli {
namespace {

struct StatusOptions {
  std::string pin_path = xdp::kDefaultPinRoot;
  std::string control_dir = kDefaultControlDir;
};

// Returns false when the kernel refused (permissions).
bool print_attachments() {
  struct if_nameindex* interfaces = if_nameindex();
  if (interfaces == nullptr) {
    throw std::runtime_error(std::string("Failed to list interfaces: ") + std::strerror(errno));
  }
  std::unique_ptr<struct if_nameindex, void (*)(struct if_nameindex*)> owner(interfaces,
                                                                             if_freenameindex);
  bool any = false;
  for (const struct if_nameindex* i = interfaces; i->if_index != 0; ++i) {
    const auto programs = xdp::attached_programs(static_cast<int>(i->if_index));
    if (!programs) {
      const int err = programs.error().code;
      if (err == EPERM || err == EACCES) {
        std::fprintf(stderr, "ringlb status: querying XDP on %s: %s (needs root: CAP_NET_ADMIN)\n",
                     i->if_name, std::strerror(err));
        return false;
      }
      continue;
    }
    for (const auto& program : *programs) {
      any = true;
      std::printf("xdp %s: %s id %u %s\n", i->if_name,
                  std::string(xdp::hook_mode_name(program.mode)).c_str(), program.id,
                  program.name.c_str());
    }
  }
  if (!any) {
    std::printf("xdp: no program attached\n");
  }
  return true;
}

void print_maps(const std::string& pin_path) {
  const auto pins = xdp::list_pinned_maps(pin_path);
  if (!pins) {
    std::printf("maps: none pinned under %s (%s)\n", pin_path.c_str(),
                pins.error().message.c_str());
    return;
  }
  if (pins->empty()) {
    std::printf("maps: none pinned under %s\n", pin_path.c_str());
  }
  for (const auto& pin : *pins) {
    if (!pin.problem.empty()) {
      std::printf("map %s: %s\n", pin.name.c_str(), pin.problem.c_str());
      continue;
    }
    std::printf("map %s: %s max_entries %u key %u value %u", pin.name.c_str(), pin.type.c_str(),
                pin.max_entries, pin.key_size, pin.value_size);
    if (pin.entries) {
      std::printf(" entries %llu", static_cast<unsigned long long>(*pin.entries));
    }
    std::printf("\n");
  }
}

void print_daemon(const std::string& control_dir) {
  if (!control_fs_mounted(control_dir)) {
    std::printf("daemon: not running (no control filesystem mounted at %s)\n", control_dir.c_str());
    return;
  }
  const Source proxy = read_proxy_source(control_dir);
  if (!proxy.available) {
    std::printf("daemon: control filesystem at %s, unreadable: %s\n", control_dir.c_str(),
                proxy.error.c_str());
    return;
  }
  const Table* workers = proxy.find("workers");
  const Table* backends = proxy.find("backends");
  std::set<std::string> vips;
  for (const auto& row : backends->rows) {
    vips.insert(row.labels.at(0).value);
  }
  const Row& totals = proxy.find("totals")->rows.at(0);
  auto total = [&](const char* name) {
    auto it = totals.counters.find(name);
    return static_cast<unsigned long long>(it != totals.counters.end() ? it->second : 0);
  };
  std::printf(
      "daemon: control filesystem at %s, %zu workers, %zu proxy VIPs, %llu active "
      "connections, %llu accepted\n",
      control_dir.c_str(), workers->rows.size(), vips.size(), total("active"), total("accepted"));
  // What the daemon asks its operator to fix (the control tree's `warnings`).
  std::ifstream warnings(control_dir + "/warnings");
  for (std::string line; std::getline(warnings, line);) {
    if (!line.empty()) {
      std::printf("daemon warning: %s\n", line.c_str());
    }
  }
}

int run_status(const StatusOptions& options) {
  const bool allowed = print_attachments();
  print_maps(options.pin_path);
  print_daemon(options.control_dir);
  return allowed ? 0 : 1;
}

}  // namespace

void add_status_command(CLI::App& app, CommandRunner& run) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand(
      "status", "XDP programs attached per interface, pinned maps and their sizes, daemon state");
  cmd->add_option("--pin-path", options->pin_path, "bpffs directory of the pinned XDP maps")
      ->capture_default_str();
  cmd->add_option("--control-dir", options->control_dir,
                  "Where ringlbd mounts its control filesystem")
      ->capture_default_str();
  cmd->callback([&run, options] { run = [options] { return run_status(*options); }; });
}

}  // namespace ringlb::cli
