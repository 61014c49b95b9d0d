// The XDP loader (include/ringlb/xdp/xdp.h): skeleton life cycle, map filling, attachment.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "ringlb/model/client_hash.h"
#include "ringlb/model/maglev.h"
#include "ringlb/xdp/xdp.h"
#include "ringlb_decap.skel.h"
#include "ringlb_xdp.skel.h"

namespace ringlb::xdp {

// The ABI header is shared with the BPF side; these pin its layout for the C++ side.
static_assert(sizeof(ringlb_vip_key) == 20);
static_assert(offsetof(ringlb_vip_key, port) == 16);
static_assert(sizeof(ringlb_vip_info) == 12);
static_assert(sizeof(ringlb_vip_slot) == 32);
static_assert(sizeof(ringlb_backend) == 20);
static_assert(sizeof(ringlb_flow_key) == 40);
static_assert(offsetof(ringlb_flow_key, sport) == 32);
static_assert(sizeof(ringlb_flow) == 12);
static_assert(sizeof(ringlb_counter) == 16);
static_assert(sizeof(ringlb_vip_filter) == RINGLB_VIP_FILTER_BITS / 8);

namespace {

// An owned file descriptor (inner maps while they are filled).
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// libbpf reports the verifier log through its print callback. While a load runs, the
// callback keeps the warnings so that a rejected program's error carries the log.
std::mutex log_mutex;
std::string* log_capture = nullptr;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) {
    return 0;
  }
  if (log_capture == nullptr) {
    return 0;
  }
  // One call can carry the whole verifier log (megabytes): size it first, since the
  // verdict is at its end.
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n > 0) {
    std::string line(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(line.data(), line.size(), format, args);
    line.pop_back();
    log_capture->append(line);
  }
  return 0;
}

class LogCapture {
 public:
  LogCapture() : lock_(log_mutex) {
    log_capture = &text_;
    libbpf_set_print(libbpf_print);
  }
  ~LogCapture() { log_capture = nullptr; }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  // The end of the log (the verifier's verdict is at the end).
  std::string tail(size_t max = 8192) const {
    return text_.size() <= max ? text_ : "..." + text_.substr(text_.size() - max);
  }

 private:
  std::lock_guard<std::mutex> lock_;
  std::string text_;
};

Error libbpf_error(std::string_view what, int err, const LogCapture* log = nullptr) {
  Error error = system_error(what, err < 0 ? -err : err);
  if (log != nullptr) {
    const std::string text = log->tail();
    if (!text.empty()) {
      error.message += "\nlibbpf/verifier log:\n" + text;
    }
  }
  return error;
}

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

std::string interface_name(int ifindex) {
  char name[IF_NAMESIZE] = "?";
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) {
    return "interface " + std::to_string(ifindex);
  }
  return name;
}

// The name of the program with id `id`, or an error.
Result<std::string> program_name(uint32_t id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(id));
  if (fd.get() < 0) {
    return system_error("Failed to open BPF program " + std::to_string(id), errno);
  }
  bpf_prog_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
    return system_error("Failed to read BPF program " + std::to_string(id), errno);
  }
  return std::string(info.name);
}

uint32_t attach_flags(XdpAttach mode) {
  return mode == XdpAttach::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
}

// What the interface's XDP hook holds: its attach mode and the program's id (0: none).
struct AttachedXdp {
  uint8_t mode = XDP_ATTACHED_NONE;
  uint32_t id = 0;
};

Result<AttachedXdp> query_attached(int ifindex, const std::string& device) {
  bpf_xdp_query_opts query{};
  query.sz = sizeof(query);
  if (const int err = bpf_xdp_query(ifindex, 0, &query); err != 0) {
    return libbpf_error("Failed to query the XDP program of " + device, err);
  }
  return AttachedXdp{.mode = query.attach_mode,
                     .id = query.prog_id != 0       ? query.prog_id
                           : query.drv_prog_id != 0 ? query.drv_prog_id
                                                    : query.skb_prog_id};
}

// check_attachable() for what query_attached() found.
Result<void> check_attached(const AttachedXdp& attached, const std::string& device,
                            std::string_view name, bool replace_other) {
  if (attached.id == 0 || replace_other) {
    return {};
  }
  auto other = program_name(attached.id);
  if (!other) {
    return other.error();
  }
  if (*other == name) {
    return {};
  }
  return Error{"Failed to attach XDP program to " + device + ": it already has XDP program '" +
                   *other + "' (id " + std::to_string(attached.id) +
                   ") of another tool. Detach that one first (ip link set dev " + device +
                   " xdp off), or pass --force to replace it",
               EBUSY};
}

}  // namespace

Result<void> check_attachable(int ifindex, std::string_view name, bool replace_other) {
  const std::string device = interface_name(ifindex);
  auto attached = query_attached(ifindex, device);
  if (!attached) {
    return attached.error();
  }
  return check_attached(*attached, device, name, replace_other);
}

namespace {

// Attaches prog_fd to the XDP hook. A program of the same name (ringlb's, from an earlier
// attach) is replaced atomically in the same mode: XDP_FLAGS_REPLACE names the program
// expected there, so nothing in between sees no program, and a concurrent change fails
// the attach instead of being overwritten. Another tool's program is replaced only with
// `replace_other`; otherwise the attach fails, changing nothing, and says how to go on.
Result<void> attach_fd(int ifindex, int prog_fd, XdpAttach mode, bool replace_other) {
  const std::string device = interface_name(ifindex);
  const char* mode_name = mode == XdpAttach::native ? "native" : "generic";
  bpf_prog_info ours{};
  uint32_t length = sizeof(ours);
  if (bpf_obj_get_info_by_fd(prog_fd, &ours, &length) != 0) {
    return system_error("Failed to read the program to attach", errno);
  }
  auto attached = query_attached(ifindex, device);
  if (!attached) {
    return attached.error();
  }
  if (auto ok = check_attached(*attached, device, ours.name, replace_other); !ok) {
    return ok;
  }
  UniqueFd old_fd;
  if (attached->mode != XDP_ATTACHED_NONE) {
    const bool same = (attached->mode == XDP_ATTACHED_DRV && mode == XdpAttach::native) ||
                      (attached->mode == XDP_ATTACHED_SKB && mode == XdpAttach::generic);
    if (same) {
      old_fd.reset(bpf_prog_get_fd_by_id(attached->id));
    } else if (auto detached = detach(ifindex); !detached) {
      // The kernel refuses a second program in another mode: that one goes first.
      return detached;
    }
  }
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = old_fd.get() >= 0 ? old_fd.get() : 0);
  const uint32_t flags = attach_flags(mode) | (old_fd.get() >= 0 ? XDP_FLAGS_REPLACE : 0);
  const int err = bpf_xdp_attach(ifindex, prog_fd, flags, &opts);
  if (err != 0) {
    return libbpf_error("Failed to attach XDP program to " + device + " (" + mode_name + ")", err);
  }
  return {};
}

}  // namespace

void SkeletonDeleter::operator()(ringlb_xdp* skel) const {
  ringlb_xdp__destroy(skel);
}
void SkeletonDeleter::operator()(ringlb_decap* skel) const {
  ringlb_decap__destroy(skel);
}

static_assert(kDefaultFlowEntries == RINGLB_DEFAULT_FLOW_ENTRIES);
static_assert(kMinFlowEntries == RINGLB_FLOW_WAYS);

namespace {

// libbpf reuses a pinned map only if it matches the object's, and says no more than
// "parameter mismatch". The flow table's size is the one an operator changes: name it.
Result<void> check_pinned_flow_table(const std::string& pin_root, uint32_t max_entries,
                                     uint32_t cpus) {
  const std::string path = pin_root + "/flows";
  OwnedFd fd(bpf_obj_get(path.c_str()));
  if (fd.get() < 0) {
    return {};  // not pinned yet: this load creates it
  }
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
    return system_error("Failed to read the pinned flow table " + path, errno);
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

}  // namespace

LoadOptions load_options(const Config& config) {
  LoadOptions options;
  options.hash_key = config.daemon.hash_key;
  options.maglev_table_size = config.daemon.maglev_table_size;
  options.flow_entries = config.xdp.flow_entries;
  if (config.xdp.enabled && config.xdp.steer) {
    uint32_t workers = config.daemon.workers;
    if (workers == 0) {
      workers = std::max(1u, std::thread::hardware_concurrency());
    }
    options.steer_workers = std::min<uint32_t>(workers, RINGLB_MAX_WORKERS);
  }
  return options;
}

Result<int> interface_index(const std::string& name) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) {
    return system_error("Failed to find interface " + name, errno);
  }
  return static_cast<int>(index);
}

Result<void> set_sources_from_interface(LoadOptions& options, const std::string& interface) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return system_error("Failed to list interface addresses", errno);
  }
  bool v4 = false;
  bool v6 = false;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || interface != ifa->ifa_name) {
      continue;
    }
    if (ifa->ifa_addr->sa_family == AF_INET && !v4) {
      options.source_v4 = reinterpret_cast<sockaddr_in*>(ifa->ifa_addr)->sin_addr.s_addr;
      v4 = true;
    } else if (ifa->ifa_addr->sa_family == AF_INET6 && !v6) {
      const auto& a = reinterpret_cast<sockaddr_in6*>(ifa->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&a)) {
        continue;
      }
      std::memcpy(options.source_v6.data(), &a, 16);
      v6 = true;
    }
  }
  freeifaddrs(list);
  if (!v4 && !v6) {
    return Error{"Failed to find an address on " + interface +
                 " for the outer header of encapsulated packets"};
  }
  return {};
}

ForwardTable build_forward_table(const VipSpec& vip, uint32_t table_size,
                                 const BackendFilter& eligible) {
  ForwardTable table;
  table.slots = vip_maglev_table(
      static_cast<uint32_t>(vip.backends.size()),
      [&](uint32_t i) {
        const BackendSpec& b = vip.backends[i];
        return b.in_rotation() && (!eligible || eligible(vip, b)) ? &b : nullptr;
      },
      table_size);
  return table;
}

std::optional<uint32_t> forward_backend(const VipSpec& /*vip*/, const ForwardTable& table,
                                        const ringlb_hash_key& key, const IpAddress& client) {
  if (table.slots.empty()) {
    return std::nullopt;
  }
  return table.slots[client_slot(key, client, static_cast<uint32_t>(table.slots.size()))];
}

Result<XdpProgram> XdpProgram::load(const LoadOptions& options) {
  LogCapture log;
  XdpProgram program;
  program.options_ = options;
  std::string pin_root = options.pin_root;
  if (!pin_root.empty()) {
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
  }
  LIBBPF_OPTS(bpf_object_open_opts, open_opts,
              .pin_root_path = pin_root.empty() ? nullptr : pin_root.c_str());
  program.skel_.reset(ringlb_xdp__open_opts(&open_opts));
  if (!program.skel_) {
    return libbpf_error("Failed to open the XDP program", errno, &log);
  }
  auto* skel = program.skel_.get();
  if (pin_root.empty()) {
    bpf_map* map;
    bpf_object__for_each_map(map, skel->obj) {
      bpf_map__set_pin_path(map, nullptr);
    }
  }
  if (options.maglev_table_size == 0 || options.maglev_table_size > kMaxMaglevTableSize) {
    return Error{"Failed to configure the XDP program: bad Maglev table size " +
                 std::to_string(options.maglev_table_size)};
  }
  skel->rodata->hash_key_k0 = options.hash_key.k0;
  skel->rodata->hash_key_k1 = options.hash_key.k1;
  skel->rodata->maglev_table_size = options.maglev_table_size;
  skel->rodata->steer_workers = options.steer_workers;
  // flow_entries per CPU, in buckets of RINGLB_FLOW_WAYS: a power of two, at least one.
  skel->rodata->flow_buckets =
      std::bit_floor(std::max<uint32_t>(options.flow_entries / RINGLB_FLOW_WAYS, 1));
  skel->rodata->encap_source_v4 = options.source_v4;
  for (int i = 0; i < 4; ++i) {
    skel->rodata->encap_source_v6[i] = options.source_v6[i];
  }
  // The inner-map template: libbpf 1.1 builds the inner map only at load time, so the
  // table size is given through a template map of the right size.
  OwnedFd inner_template(bpf_map_create(BPF_MAP_TYPE_ARRAY, "maglev_tmpl", sizeof(uint32_t),
                                        sizeof(uint32_t), options.maglev_table_size, nullptr));
  if (inner_template.get() < 0) {
    return libbpf_error("Failed to create the Maglev table template map", errno, &log);
  }
  int err = bpf_map__set_inner_map_fd(skel->maps.maglev_tables, inner_template.get());
  if (err == 0) {
    const int cpus = libbpf_num_possible_cpus();
    err = cpus < 0 ? cpus
                   : bpf_map__set_max_entries(skel->maps.flows, skel->rodata->flow_buckets *
                                                                    static_cast<uint32_t>(cpus));
  }
  if (err != 0) {
    return libbpf_error("Failed to size the XDP program's maps", err, &log);
  }
  if (!pin_root.empty()) {
    if (auto checked = check_pinned_flow_table(pin_root, bpf_map__max_entries(skel->maps.flows),
                                               static_cast<uint32_t>(libbpf_num_possible_cpus()));
        !checked) {
      return checked.error();
    }
  }
  err = ringlb_xdp__load(skel);
  if (err != 0) {
    return libbpf_error("Failed to load the XDP program" +
                            (pin_root.empty() ? std::string() : " (pins under " + pin_root + ")"),
                        err, &log);
  }
  return program;
}

int XdpProgram::xdp_fd() const {
  return bpf_program__fd(skel_->progs.ringlb_xdp);
}
int XdpProgram::reuseport_fd() const {
  return bpf_program__fd(skel_->progs.ringlb_reuseport);
}

int XdpProgram::map_fd(std::string_view name) const {
  bpf_map* map = bpf_object__find_map_by_name(skel_->obj, std::string(name).c_str());
  return map == nullptr ? -1 : bpf_map__fd(map);
}

MapFds XdpProgram::map_fds() const {
  const auto& maps = skel_->maps;
  return MapFds{.vips = bpf_map__fd(maps.vips),
                .vip_index = bpf_map__fd(maps.vip_index),
                .vip_epochs = bpf_map__fd(maps.vip_epochs),
                .vip_filter = bpf_map__fd(maps.vip_filter),
                .backends = bpf_map__fd(maps.backends),
                .maglev_tables = bpf_map__fd(maps.maglev_tables),
                .cpu_map = bpf_map__fd(maps.cpu_map),
                .lb_state = bpf_map__fd(maps.lb_state),
                .vip_state = bpf_map__fd(maps.vip_state),
                .backend_state = bpf_map__fd(maps.backend_state)};
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

void resolve_next_hops(const Config& config) {
  resolve_next_hops(config.vips);
}

void resolve_next_hops(const std::vector<VipSpec>& vips) {
  for (const auto& vip : vips) {
    if (vip.mode != Mode::forward) {
      continue;
    }
    for (const auto& backend : vip.backends) {
      if (backend.state == AdminState::down) {
        continue;
      }
      // An empty datagram to the discard port: the kernel resolves the next hop's MAC,
      // which bpf_fib_lookup then finds. Failures only delay the first packets.
      const SocketAddress target{.ip = backend.address.ip, .port = 9};
      sockaddr_storage storage{};
      const socklen_t len = target.to_sockaddr(storage);
      OwnedFd fd(::socket(storage.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (fd.get() >= 0) {
        (void)::sendto(fd.get(), "", 0, 0, reinterpret_cast<sockaddr*>(&storage), len);
      }
    }
  }
}

Result<void> XdpProgram::attach(int ifindex, XdpAttach mode, bool replace_other) const {
  return attach_fd(ifindex, xdp_fd(), mode, replace_other);
}

Result<DecapProgram> DecapProgram::load() {
  LogCapture log;
  DecapProgram program;
  program.skel_.reset(ringlb_decap__open_and_load());
  if (!program.skel_) {
    return libbpf_error("Failed to load the decap program", errno, &log);
  }
  return program;
}

Result<void> DecapProgram::attach(int ifindex, XdpAttach mode, bool replace_other) const {
  return attach_fd(ifindex, fd(), mode, replace_other);
}

namespace {

// The names the kernel gives the decap entry points (bpf_prog_info.name, at most 15
// characters): how detach tells ringlb's program from another one.
constexpr std::string_view kDecapXdpName = "ringlb_decap";
constexpr std::string_view kDecapTcName = "ringlb_decap_tc";

bpf_tc_hook ingress_hook(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  return hook;
}

// bpf_tc_opts naming ringlb's filter (handle and priority only: what query and detach
// take).
bpf_tc_opts decap_filter() {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kDecapTcHandle;
  opts.priority = kDecapTcPriority;
  return opts;
}

// The id of the program at ringlb's handle and priority on clsact ingress, or 0 when
// there is none (or no clsact qdisc).
Result<uint32_t> decap_filter_program(int ifindex) {
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = decap_filter();
  const int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) {
    return 0u;  // no such filter; EINVAL: no clsact qdisc to look in
  }
  if (err != 0) {
    return libbpf_error("Failed to query the tc ingress filters of " + interface_name(ifindex),
                        err);
  }
  return opts.prog_id;
}

// The clsact qdisc that attach_tc() created, removed again unless the attach succeeded.
class CreatedClsact {
 public:
  explicit CreatedClsact(int ifindex) : ifindex_(ifindex) {}
  CreatedClsact(const CreatedClsact&) = delete;
  CreatedClsact& operator=(const CreatedClsact&) = delete;
  ~CreatedClsact() {
    if (ifindex_ != 0) {
      bpf_tc_hook hook = ingress_hook(ifindex_);
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook);
    }
  }
  void keep() { ifindex_ = 0; }

 private:
  int ifindex_;
};

// How many filters the clsact qdisc holds at `parent` (ingress or egress), from an
// RTM_GETTFILTER dump: libbpf has no call that lists filters.
Result<size_t> count_tc_filters(int ifindex, uint32_t parent) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (fd.get() < 0) {
    return system_error("Failed to open a netlink socket", errno);
  }
  struct {
    nlmsghdr header;
    tcmsg tc;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = RTM_GETTFILTER;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = 1;
  request.tc.tcm_family = AF_UNSPEC;
  request.tc.tcm_ifindex = ifindex;
  request.tc.tcm_parent = parent;
  if (::send(fd.get(), &request, sizeof(request), 0) < 0) {
    return system_error("Failed to ask for the tc filters of " + interface_name(ifindex), errno);
  }
  std::vector<char> buffer(32768);
  size_t filters = 0;
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      return system_error("Failed to read the tc filters of " + interface_name(ifindex), errno);
    }
    auto left = static_cast<uint32_t>(n);
    for (auto* msg = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(msg, left);
         msg = NLMSG_NEXT(msg, left)) {
      if (msg->nlmsg_type == NLMSG_DONE) {
        return filters;
      }
      if (msg->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(msg));
        if (error->error != 0) {
          return system_error("Failed to list the tc filters of " + interface_name(ifindex),
                              -error->error);
        }
        return filters;
      }
      if (msg->nlmsg_type == RTM_NEWTFILTER) {
        ++filters;
      }
    }
    if (n == 0) {
      return filters;
    }
  }
}

}  // namespace

Result<void> DecapProgram::attach_tc(int ifindex) const {
  // libbpf prints the kernel's netlink messages ("Exclusivity flag on" for an existing
  // qdisc); keep them for the error instead.
  LogCapture log;
  const std::string name = interface_name(ifindex);
  auto held_by = decap_filter_program(ifindex);
  if (!held_by) {
    return held_by.error();
  }
  if (*held_by != 0) {
    auto held_name = program_name(*held_by);
    if (!held_name) {
      return held_name.error();
    }
    if (*held_name != kDecapTcName) {
      return system_error("Failed to attach the decap tc filter to " + name + ": handle " +
                              std::to_string(kDecapTcHandle) + " priority " +
                              std::to_string(kDecapTcPriority) + " holds another program (id " +
                              std::to_string(*held_by) + ", " + *held_name + ")",
                          EBUSY);
    }
  }
  bpf_tc_hook hook = ingress_hook(ifindex);
  std::optional<CreatedClsact> created;
  if (const int err = bpf_tc_hook_create(&hook); err == 0) {
    created.emplace(ifindex);
  } else if (err != -EEXIST) {
    return libbpf_error("Failed to create the clsact qdisc of " + name, err, &log);
  }
  bpf_tc_opts opts = decap_filter();
  opts.prog_fd = tc_fd();
  opts.flags = BPF_TC_F_REPLACE;
  if (const int err = bpf_tc_attach(&hook, &opts); err != 0) {
    return libbpf_error("Failed to attach the decap tc filter to " + name + " (clsact ingress)",
                        err, &log);
  }
  if (created) {
    created->keep();
  }
  return {};
}

Result<bool> detach_decap_tc(int ifindex) {
  LogCapture log;  // as in attach_tc ("Parent Qdisc doesn't exists" without clsact)
  const std::string name = interface_name(ifindex);
  auto held_by = decap_filter_program(ifindex);
  if (!held_by) {
    return held_by.error();
  }
  if (*held_by == 0) {
    return false;
  }
  auto held_name = program_name(*held_by);
  if (!held_name) {
    return held_name.error();
  }
  if (*held_name != kDecapTcName) {
    return false;
  }
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = decap_filter();
  if (const int err = bpf_tc_detach(&hook, &opts); err != 0) {
    return libbpf_error("Failed to detach the decap tc filter from " + name, err, &log);
  }
  // The clsact qdisc goes too when nothing else uses it (other filters would go with it).
  auto ingress = count_tc_filters(ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS));
  if (!ingress) {
    return ingress.error();
  }
  auto egress = count_tc_filters(ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS));
  if (!egress) {
    return egress.error();
  }
  if (*ingress == 0 && *egress == 0) {
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    if (const int err = bpf_tc_hook_destroy(&hook); err != 0 && err != -ENOENT) {
      return libbpf_error("Failed to remove the clsact qdisc of " + name, err, &log);
    }
  }
  return true;
}

Result<bool> detach_decap_xdp(int ifindex) {
  bpf_xdp_query_opts query{};
  query.sz = sizeof(query);
  if (const int err = bpf_xdp_query(ifindex, 0, &query); err != 0) {
    return libbpf_error("Failed to query the XDP program of " + interface_name(ifindex), err);
  }
  const std::pair<uint32_t, uint32_t> attached[] = {{query.drv_prog_id, XDP_FLAGS_DRV_MODE},
                                                    {query.skb_prog_id, XDP_FLAGS_SKB_MODE}};
  bool detached = false;
  for (const auto& [id, flags] : attached) {
    if (id == 0) {
      continue;
    }
    auto name = program_name(id);
    if (!name) {
      return name.error();
    }
    if (*name != kDecapXdpName) {
      continue;
    }
    if (const int err = bpf_xdp_detach(ifindex, flags, nullptr); err != 0) {
      return libbpf_error("Failed to detach the decap XDP program from " + interface_name(ifindex),
                          err);
    }
    detached = true;
  }
  return detached;
}

int DecapProgram::fd() const {
  return bpf_program__fd(skel_->progs.ringlb_decap);
}
int DecapProgram::tc_fd() const {
  return bpf_program__fd(skel_->progs.ringlb_decap_tc);
}
int DecapProgram::stats_fd() const {
  return bpf_map__fd(skel_->maps.decap_stats);
}

Result<void> detach(int ifindex) {
  bpf_xdp_query_opts query{};
  query.sz = sizeof(query);
  int err = bpf_xdp_query(ifindex, 0, &query);
  if (err != 0) {
    return libbpf_error("Failed to query the XDP program of interface " + std::to_string(ifindex),
                        err);
  }
  uint32_t flags = 0;
  switch (query.attach_mode) {
    case XDP_ATTACHED_NONE:
      return {};
    case XDP_ATTACHED_DRV:
      flags = XDP_FLAGS_DRV_MODE;
      break;
    case XDP_ATTACHED_SKB:
      flags = XDP_FLAGS_SKB_MODE;
      break;
    case XDP_ATTACHED_HW:
      flags = XDP_FLAGS_HW_MODE;
      break;
    default:
      break;  // several modes: detach the driver one, then look again
  }
  if (flags == 0) {
    flags = XDP_FLAGS_DRV_MODE;
  }
  err = bpf_xdp_detach(ifindex, flags, nullptr);
  if (err != 0) {
    return libbpf_error("Failed to detach XDP program", err);
  }
  if (query.attach_mode == XDP_ATTACHED_MULTI) {
    return detach(ifindex);
  }
  return {};
}

Result<std::vector<ringlb_counter>> read_counters(int map_fd, uint32_t entries) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    return libbpf_error("Failed to count CPUs", cpus);
  }
  std::vector<ringlb_counter> per_cpu(cpus);
  std::vector<ringlb_counter> sums(entries);
  for (uint32_t i = 0; i < entries; ++i) {
    if (bpf_map_lookup_elem(map_fd, &i, per_cpu.data()) != 0) {
      return system_error("Failed to read counter " + std::to_string(i), errno);
    }
    for (const auto& c : per_cpu) {
      sums[i].packets += c.packets;
      sums[i].bytes += c.bytes;
    }
  }
  return sums;
}

std::string_view verdict_name(uint32_t verdict) {
  // A switch over the enum, not a parallel list: -Wswitch (an error here) names any
  // verdict left out, and no entry can slip by one.
  switch (static_cast<ringlb_verdict>(verdict)) {
    case RINGLB_V_PASS_NOT_IP:
      return "pass_not_ip";
    case RINGLB_V_PASS_MALFORMED:
      return "pass_malformed";
    case RINGLB_V_PASS_NOT_VIP:
      return "pass_not_vip";
    case RINGLB_V_PASS_FRAGMENT:
      return "pass_fragment";
    case RINGLB_V_PASS_ICMP:
      return "pass_icmp";
    case RINGLB_V_PASS_STEER_NO_CPU:
      return "pass_steer_no_cpu";
    case RINGLB_V_TX_FORWARD:
      return "tx_forward";
    case RINGLB_V_REDIRECT_FORWARD:
      return "redirect_forward";
    case RINGLB_V_TX_ICMP_ERROR:
      return "tx_icmp_error";
    case RINGLB_V_TX_TOO_BIG:
      return "tx_too_big";
    case RINGLB_V_REDIRECT_STEER:
      return "redirect_steer";
    case RINGLB_V_DROP_NO_BACKEND:
      return "drop_no_backend";
    case RINGLB_V_DROP_FIB:
      return "drop_fib";
    case RINGLB_V_DROP_NO_NEIGH:
      return "drop_no_neigh";
    case RINGLB_V_DROP_ERROR:
      return "drop_error";
    case RINGLB_V_MAX:
      break;
  }
  return "unknown";
}

}  // namespace ringlb::xdp
