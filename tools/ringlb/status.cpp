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
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"
#include "ringlb/fd.h"
#include "ringlb/xdp/xdp.h"
#include "stats.h"

namespace ringlb::cli {
namespace {

struct StatusOptions {
  std::string pin_path = xdp::kDefaultPinRoot;
  std::string control_dir = "/run/ringlb";
};

std::string program_name(uint32_t id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(id));
  if (!fd.valid()) {
    return "?";
  }
  bpf_prog_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
    return "?";
  }
  return info.name;
}

const char* map_type_name(uint32_t type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name != nullptr ? name : "unknown";
}

// Entries in use, for hash maps (arrays are always full).
std::optional<uint64_t> count_entries(int fd, const bpf_map_info& info) {
  if (info.type != BPF_MAP_TYPE_HASH && info.type != BPF_MAP_TYPE_LRU_HASH) {
    return std::nullopt;
  }
  std::vector<uint8_t> key(info.key_size), next(info.key_size);
  const void* previous = nullptr;
  uint64_t count = 0;
  while (bpf_map_get_next_key(fd, previous, next.data()) == 0) {
    key.swap(next);
    previous = key.data();
    ++count;
  }
  return count;
}

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
    bpf_xdp_query_opts opts{};
    opts.sz = sizeof(opts);
    const int err = bpf_xdp_query(static_cast<int>(i->if_index), 0, &opts);
    if (err == -EPERM || err == -EACCES) {
      std::fprintf(stderr, "ringlb status: querying XDP on %s: %s (needs root: CAP_NET_ADMIN)\n",
                   i->if_name, std::strerror(-err));
      return false;
    }
    if (err != 0) {
      continue;
    }
    struct Attached {
      const char* mode;
      uint32_t id;
    };
    for (const Attached a :
         {Attached{"native", opts.drv_prog_id}, Attached{"generic", opts.skb_prog_id},
          Attached{"offload", opts.hw_prog_id}}) {
      if (a.id == 0) {
        continue;
      }
      any = true;
      std::printf("xdp %s: %s id %u %s\n", i->if_name, a.mode, a.id, program_name(a.id).c_str());
    }
  }
  if (!any) {
    std::printf("xdp: no program attached\n");
  }
  return true;
}

void print_maps(const std::string& pin_path) {
  std::error_code ec;
  std::vector<std::filesystem::path> pins;
  for (const auto& entry : std::filesystem::directory_iterator(pin_path, ec)) {
    pins.push_back(entry.path());
  }
  if (ec) {
    std::printf("maps: none pinned under %s (%s)\n", pin_path.c_str(), ec.message().c_str());
    return;
  }
  std::sort(pins.begin(), pins.end());
  if (pins.empty()) {
    std::printf("maps: none pinned under %s\n", pin_path.c_str());
  }
  for (const auto& pin : pins) {
    const std::string name = pin.filename().string();
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd.valid()) {
      std::printf("map %s: cannot open: %s\n", name.c_str(), std::strerror(errno));
      continue;
    }
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
      std::printf("map %s: not a map\n", name.c_str());
      continue;
    }
    std::printf("map %s: %s max_entries %u key %u value %u", name.c_str(), map_type_name(info.type),
                info.max_entries, info.key_size, info.value_size);
    if (auto entries = count_entries(fd.get(), info)) {
      std::printf(" entries %llu", static_cast<unsigned long long>(*entries));
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
