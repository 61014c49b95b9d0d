// The data-plane program (program.h): open the skeleton, set rodata and map sizes, check
// the pin root, load; then fill and attach.
#include "ringlb/xdp/program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <ctime>
#include <optional>
#include <thread>

#include "hook.h"
#include "libbpf_log.h"
#include "ringlb/fd.h"
#include "skeleton_maps.h"

namespace ringlb::xdp {
namespace {

Result<void> make_dirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos == path.size() || path[pos] == '/') {
      const std::string prefix = path.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
        return system_error("Failed to create pin directory " + prefix, errno);
      }
    }
  }
  return {};
}

// Creates the pin root when missing; it must be on a bpffs mount.
Result<void> prepare_pin_root(const std::string& pin_root) {
  if (auto made = make_dirs(pin_root); !made) {
    return made.error();
  }
  struct statfs fs {};
  if (::statfs(pin_root.c_str(), &fs) != 0) {
    return system_error("Failed to check pin directory " + pin_root, errno);
  }
  if (static_cast<uint64_t>(fs.f_type) != BPF_FS_MAGIC) {
    return Error{"Failed to pin maps: " + pin_root +
                 " is not on a bpffs mount (mount -t bpf bpf /sys/fs/bpf)"};
  }
  return {};
}

// Counters pinned by an older ringlb with fewer verdicts do not match this program's
// map, which libbpf then refuses to reuse: unpinned, so that the load pins a new one.
// Only the counts restart; the old program keeps its own map until it is replaced.
void unpin_outgrown_counters(const std::string& pin_root) {
  const std::string path = pin_root + "/verdict_stats";
  UniqueFd fd(bpf_obj_get(path.c_str()));
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (fd.valid() && bpf_obj_get_info_by_fd(fd.get(), &info, &length) == 0 &&
      info.max_entries != RINGLB_V_MAX) {
    ::unlink(path.c_str());
  }
}

// libbpf reuses a pinned map only if it matches the object's, and says no more than
// "parameter mismatch". The flow table's size is the one an operator changes: name it.
Result<void> check_pinned_flow_table(const std::string& pin_root, uint32_t max_entries,
                                     uint32_t cpus) {
  const std::string path = pin_root + "/flows";
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) {
    return {};  // not pinned yet: this load creates it
  }
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
    return system_error("Failed to read the pinned flow table " + path, errno);
  }
  if (info.value_size != sizeof(ringlb_flow_bucket)) {
    // An older ringlb's layout (issue 16 made buckets one cache line): replaced, as the
    // counters are. Its flows fall back to the Maglev table, which keeps each on its
    // backend unless the pool changed; the old program keeps its map until replaced.
    ::unlink(path.c_str());
    return {};
  }
  if (info.max_entries != max_entries) {
    return Error{"The pinned flow table " + path + " holds " +
                 std::to_string(info.max_entries / cpus * RINGLB_FLOW_WAYS) +
                 " flows per CPU; the config asks for " +
                 std::to_string(max_entries / cpus * RINGLB_FLOW_WAYS) +
                 " (xdp.flow_entries). Detach with --unpin first: established flows "
                 "lose their entries"};
  }
  return {};
}

// `ms` in jiffies: the coarse monotonic clock ticks once a jiffy, so its resolution is
// the kernel's tick (4 ms at HZ 250). 1 ms (HZ 1000) if it cannot be read.
uint32_t idle_jiffies(uint32_t ms) {
  timespec tick{};
  uint64_t tick_ns = 1000000;
  if (::clock_getres(CLOCK_MONOTONIC_COARSE, &tick) == 0 && tick.tv_sec == 0 && tick.tv_nsec > 0) {
    tick_ns = static_cast<uint64_t>(tick.tv_nsec);
  }
  return static_cast<uint32_t>(std::max<uint64_t>(uint64_t{ms} * 1000000 / tick_ns, 1));
}

// The rodata: the runtime knobs the verifier then sees as constants.
void set_rodata(ringlb_xdp& skel, const LoadOptions& options) {
  skel.rodata->hash_key_k0 = options.hash_key.k0;
  skel.rodata->hash_key_k1 = options.hash_key.k1;
  skel.rodata->maglev_table_size = options.maglev_table_size;
  skel.rodata->steer_workers = options.steer_workers;
  // flow_entries per CPU, in buckets of RINGLB_FLOW_WAYS: a power of two, at least one.
  skel.rodata->flow_buckets =
      std::bit_floor(std::max<uint32_t>(options.flow_entries / RINGLB_FLOW_WAYS, 1));
  skel.rodata->flow_idle_jiffies = idle_jiffies(options.flow_idle_ms);
  const uint64_t interval =
      options.icmp_too_big_rate == 0 ? 0 : 1000000000ull / options.icmp_too_big_rate;
  skel.rodata->icmp_interval_ns = interval;
  skel.rodata->icmp_burst_ns = interval * kIcmpTooBigBurst;
  skel.rodata->encap_source_v4 = options.source_v4;
  for (int i = 0; i < 4; ++i) {
    skel.rodata->encap_source_v6[i] = options.source_v6[i];
  }
}

// Sizes the Maglev tables and the flow table. Returns the inner-map template, which must
// stay open until the load: libbpf 1.1 builds the inner map only at load time, so the
// table size is given through a template map of the right size.
Result<UniqueFd> size_maps(ringlb_xdp& skel, uint32_t table_size, const LogCapture& log) {
  UniqueFd inner_template(bpf_map_create(BPF_MAP_TYPE_ARRAY, "maglev_tmpl", sizeof(uint32_t),
                                         sizeof(uint32_t), table_size, nullptr));
  if (!inner_template.valid()) {
    return libbpf_error("Failed to create the Maglev table template map", errno, &log);
  }
  int err = bpf_map__set_inner_map_fd(skel.maps.maglev_tables, inner_template.get());
  if (err == 0) {
    const int cpus = libbpf_num_possible_cpus();
    err = cpus < 0 ? cpus
                   : bpf_map__set_max_entries(
                         skel.maps.flows, skel.rodata->flow_buckets * static_cast<uint32_t>(cpus));
  }
  if (err != 0) {
    return libbpf_error("Failed to size the XDP program's maps", err, &log);
  }
  return inner_template;
}

// Opens the skeleton with its maps pinned under `pin_root`, or with no pins when empty.
Result<ringlb_xdp*> open_skeleton(const std::string& pin_root, const LogCapture& log) {
  LIBBPF_OPTS(bpf_object_open_opts, open_opts,
              .pin_root_path = pin_root.empty() ? nullptr : pin_root.c_str());
  ringlb_xdp* skel = ringlb_xdp__open_opts(&open_opts);
  if (skel == nullptr) {
    return libbpf_error("Failed to open the XDP program", errno, &log);
  }
  if (pin_root.empty()) {
    bpf_map* map;
    bpf_object__for_each_map(map, skel->obj) {
      bpf_map__set_pin_path(map, nullptr);
    }
  }
  return skel;
}

}  // namespace

void SkeletonDeleter::operator()(ringlb_xdp* skel) const {
  ringlb_xdp__destroy(skel);
}

LoadOptions load_options(const Config& config) {
  LoadOptions options;
  options.hash_key = config.daemon.hash_key;
  options.maglev_table_size = config.daemon.maglev_table_size;
  options.flow_entries = config.xdp.flow_entries;
  options.flow_idle_ms = config.xdp.flow_idle_timeout_ms;
  options.icmp_too_big_rate = config.xdp.icmp_too_big_rate;
  if (config.xdp.enabled && config.xdp.steer) {
    uint32_t workers = config.daemon.workers;
    if (workers == 0) {
      workers = std::max(1u, std::thread::hardware_concurrency());
    }
    options.steer_workers = std::min<uint32_t>(workers, RINGLB_MAX_WORKERS);
  }
  return options;
}

Result<XdpProgram> XdpProgram::load(const LoadOptions& options) {
  LogCapture log;
  XdpProgram program;
  program.options_ = options;
  const std::string& pin_root = options.pin_root;
  if (!pin_root.empty()) {
    if (auto prepared = prepare_pin_root(pin_root); !prepared) {
      return prepared.error();
    }
  }
  auto opened = open_skeleton(pin_root, log);
  if (!opened) {
    return opened.error();
  }
  program.skel_.reset(*opened);
  ringlb_xdp& skel = *program.skel_;
  if (options.maglev_table_size == 0 || options.maglev_table_size > kMaxMaglevTableSize) {
    return Error{"Failed to configure the XDP program: bad Maglev table size " +
                 std::to_string(options.maglev_table_size)};
  }
  set_rodata(skel, options);
  auto inner_template = size_maps(skel, options.maglev_table_size, log);
  if (!inner_template) {
    return inner_template.error();
  }
  if (!pin_root.empty()) {
    unpin_outgrown_counters(pin_root);
    if (auto checked = check_pinned_flow_table(pin_root, bpf_map__max_entries(skel.maps.flows),
                                               static_cast<uint32_t>(libbpf_num_possible_cpus()));
        !checked) {
      return checked.error();
    }
  }
  if (const int err = ringlb_xdp__load(&skel); err != 0) {
    return libbpf_error("Failed to load the XDP program" +
                            (pin_root.empty() ? std::string() : " (pins under " + pin_root + ")"),
                        err, &log);
  }
  return program;
}

int XdpProgram::xdp_fd() const {
  return bpf_program__fd(skel_->progs.ringlb_xdp);
}

int XdpProgram::map_fd(std::string_view name) const {
  bpf_map* map = bpf_object__find_map_by_name(skel_->obj, std::string(name).c_str());
  return map == nullptr ? -1 : bpf_map__fd(map);
}

MapFds XdpProgram::map_fds() const {
  return state_map_fds(*skel_);
}

Result<void> XdpProgram::apply(const Config& config) {
  const uint32_t table_size = options_.maglev_table_size;
  if (config.daemon.maglev_table_size != table_size) {
    return Error{"Failed to apply config: maglev_table_size " +
                 std::to_string(config.daemon.maglev_table_size) +
                 " differs from the loaded program's " + std::to_string(table_size)};
  }
  // The CLI and ringlbd edit the same pinned maps: one writer at a time.
  std::optional<StateLock> lock;
  if (!options_.pin_root.empty()) {
    auto taken = StateLock::take(options_.pin_root, true);
    if (!taken) {
      return taken.error();
    }
    lock.emplace(std::move(*taken));
  }
  const XdpState state =
      state_from_config(config, table_size, options_.hash_key, options_.steer_workers);
  if (auto applied = apply_state(map_fds(), state); !applied) {
    return Error{"Failed to apply config: " + applied.error().message, applied.error().code};
  }
  return {};
}

Result<void> XdpProgram::attach(int ifindex, XdpAttach mode, bool replace_other) const {
  return attach_program(ifindex, xdp_fd(), mode, replace_other);
}

}  // namespace ringlb::xdp
