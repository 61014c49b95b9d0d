#include "ringlb/control/tree.h"

#include "ringlb/fd.h"
#include "ringlb/model/fields.h"
#include "ringlb/model/health.h"
#include "ringlb/xdp/xdp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <map>
#include <span>
#include <thread>

namespace ringlb::control {

namespace {

std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    if (end > start) {
      parts.emplace_back(path.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

Error not_found(std::string_view path) {
  return Error{"no such file: " + std::string(path), ENOENT};
}
Error invalid(const std::string& why) {
  return Error{why, EINVAL};
}
Error read_only(std::string_view file) {
  return Error{std::string(file) + " is read-only", EACCES};
}

std::string_view trim_newline(std::string_view value) {
  if (!value.empty() && value.back() == '\n') {
    value.remove_suffix(1);
  }
  return value;
}

std::string line(std::string_view v) {
  return std::string(v) + "\n";
}
std::string line(uint64_t v) {
  return std::to_string(v) + "\n";
}

// Files of a VIP directory: name, writable.
constexpr std::pair<std::string_view, bool> kVipFiles[] = {
    {"listen", false},
    {"mode", false},
    {"protocol", false},
    {"policy", true},
    {"connect_timeout_ms", true},
    {"connect_retries", true},
    {"idle_timeout_ms", true},
    {"max_connection_age_ms", true},
    {"send_proxy_v2", true},
};

// Files of a backend directory: name, readable, writable.
struct BackendFile {
  std::string_view name;
  bool readable;
  bool writable;
};
constexpr BackendFile kBackendFiles[] = {
    {"address", true, true},
    {"weight", true, true},
    {"state", true, true},
    {"health", true, false},
    {"active", true, false},
    {"connections", true, false},
    {"bytes_in", true, false},
    {"bytes_out", true, false},
    {"failures", true, false},
    {"connect_refused", true, false},
    {"connect_timeouts", true, false},
    {"connect_errors", true, false},
    {"shutdown", false, true},
};

const BackendFile* backend_file(std::string_view name) {
  for (const auto& f : kBackendFiles) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

const std::pair<std::string_view, bool>* vip_file(std::string_view name) {
  for (const auto& f : kVipFiles) {
    if (f.first == name) {
      return &f;
    }
  }
  return nullptr;
}

std::vector<std::string> worker_files() {
  std::vector<std::string> names = {"cpu", "cycles", "instructions", "task_clock_ns"};
#define RINGLB_NAME(name, help) names.emplace_back(#name);
  RINGLB_WORKER_COUNTERS(RINGLB_NAME)
#undef RINGLB_NAME
  return names;
}

uint64_t worker_counter(const WorkerStats& s, std::string_view name, bool& found) {
  found = true;
#define RINGLB_GET(counter, help) \
  if (name == #counter) {         \
    return s.counter.get();       \
  }
  RINGLB_WORKER_COUNTERS(RINGLB_GET)
#undef RINGLB_GET
  found = false;
  return 0;
}

std::string perf_value(int fd) {
  uint64_t v = 0;
  if (fd < 0 || ::read(fd, &v, sizeof(v)) != sizeof(v)) {
    return "unavailable\n";  // no such counter on this machine (probed at start)
  }
  return line(v);
}

// Forward-mode VIPs have no VipRuntime (the XDP program serves them, not the workers):
// their part of vips/ comes from the running config, and writes go through Runtime::edit
// like any other, which ringlbd's publish hook writes to the pinned XDP maps.
std::optional<VipSpec> forward_vip(const Runtime& runtime, std::string_view name) {
  const auto config = runtime.config();  // held: the spec is copied out of it
  const VipSpec* vip = find_vip(config->vips, name);
  if (vip == nullptr || vip->mode != Mode::forward) {
    return std::nullopt;
  }
  return *vip;
}

constexpr std::string_view kForwardVipFiles[] = {"listen", "mode", "protocol"};
// Name, writable. A forward backend has no connection counters: the XDP program's are
// per address (ringlb stats).
constexpr std::pair<std::string_view, bool> kForwardBackendFiles[] = {
    {"address", true}, {"weight", true}, {"state", true}, {"health", false}};

// stat() below a VIP directory known by its spec: `rel` is the path from the VIP's name
// on (rel[0] is the name), `backend_files` its backends' files (name, writable);
// `pending`: rel[2] is a pending backend of the VIP.
Result<NodeInfo> stat_spec_vip(const VipSpec& vip, std::span<const std::string> rel,
                               std::span<const std::pair<std::string_view, bool>> backend_files,
                               std::string_view path, bool pending) {
  const NodeInfo dir{NodeKind::directory, true, false};
  if (rel.size() == 1) {
    return dir;
  }
  if (rel.size() == 2) {
    if (rel[1] == "backends") {
      return dir;
    }
    if (std::find(std::begin(kForwardVipFiles), std::end(kForwardVipFiles), rel[1]) !=
        std::end(kForwardVipFiles)) {
      return NodeInfo{NodeKind::file, true, false};
    }
    return not_found(path);
  }
  if (rel[1] != "backends" || rel.size() > 4 ||
      (find_backend(vip, rel[2]) == nullptr && !pending)) {
    return not_found(path);
  }
  if (rel.size() == 3) {
    return dir;
  }
  for (const auto& [name, writable] : backend_files) {
    if (name == rel[3]) {
      return NodeInfo{NodeKind::file, true, writable};
    }
  }
  return not_found(path);
}

}  // namespace

ControlTree::ControlTree(Runtime& runtime, std::function<Result<void>()> reload,
                         std::string pin_root)
    : runtime_(runtime), reload_(std::move(reload)), pin_root_(std::move(pin_root)) {}

namespace {

std::vector<std::string> verdict_names() {
  std::vector<std::string> names;
  for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
    names.emplace_back(xdp::verdict_name(v));
  }
  return names;
}

// xdp/vips/...: the VIPs and backends the pinned maps hold (what the XDP program uses,
// whoever wrote it: ringlbd, `ringlb attach -c` or `ringlb xdp`), read on every access.
struct PinnedVip {
  VipSpec spec;
  std::map<std::string, uint64_t> slots;  // backend name -> Maglev slots it owns now
};

Result<std::vector<PinnedVip>> pinned_vips(const std::string& pin_root, bool with_slots) {
  auto maps = xdp::PinnedMaps::open(pin_root);
  if (!maps) {
    return std::vector<PinnedVip>{};  // no program: no VIPs
  }
  auto state = xdp::read_state(maps->fds());
  if (!state) {
    return std::vector<PinnedVip>{};
  }
  std::map<uint32_t, IpAddress> addresses;
  if (with_slots) {
    auto read = xdp::read_backend_addresses(maps->fds());
    if (!read) {
      return read.error();
    }
    addresses = std::move(*read);
  }
  std::vector<PinnedVip> out;
  for (auto& spec : state->vips) {
    PinnedVip vip{.spec = std::move(spec), .slots = {}};
    if (with_slots && vip.spec.mode == Mode::forward) {
      auto id = xdp::pinned_vip_id(maps->fds(), vip.spec);
      auto table =
          id ? xdp::read_maglev_table(maps->fds(), *id) : Result<std::vector<uint32_t>>(id.error());
      if (!table) {
        return table.error();
      }
      for (uint32_t backend_id : *table) {
        const auto it = addresses.find(backend_id);
        for (const auto& b : vip.spec.backends) {
          if (it != addresses.end() && b.address.ip == it->second) {
            ++vip.slots[b.name];
          }
        }
      }
    }
    out.push_back(std::move(vip));
  }
  return out;
}

const PinnedVip* find_pinned(const std::vector<PinnedVip>& vips, const std::string& name) {
  for (const auto& v : vips) {
    if (v.spec.name == name) {
      return &v;
    }
  }
  return nullptr;
}

constexpr std::pair<std::string_view, bool> kXdpBackendFiles[] = {
    {"address", false}, {"slots", false}, {"state", true}, {"weight", true}};

// stat() of xdp/vips/...: p[0] == "xdp", p[1] == "vips".
Result<NodeInfo> stat_xdp_vips(const std::string& pin_root, const std::vector<std::string>& p,
                               std::string_view path) {
  const NodeInfo dir{NodeKind::directory, true, false};
  if (p.size() == 2) {
    return dir;
  }
  auto vips = pinned_vips(pin_root, false);
  if (!vips) {
    return vips.error();
  }
  const PinnedVip* vip = find_pinned(*vips, p[2]);
  if (vip == nullptr) {
    return not_found(path);
  }
  return stat_spec_vip(vip->spec, std::span(p).subspan(2), kXdpBackendFiles, path, false);
}

}  // namespace

// What the XDP plane shows: read from the interface and the pinned maps on every read,
// so it is right whether the program was attached before or after the daemon started.
Result<std::string> ControlTree::read_xdp(const std::vector<std::string>& p) const {
  const auto config = runtime_.config();
  if (p[1] == "pin_path") {
    return line(pin_root_);
  }
  if (p[1] == "interface") {
    return line(config->xdp.enabled ? config->xdp.interface : std::string("none"));
  }
  if (p[1] == "vips") {
    auto vips = pinned_vips(pin_root_, p.size() == 6 && p[5] == "slots");
    if (!vips) {
      return vips.error();
    }
    const PinnedVip* vip = find_pinned(*vips, p[2]);
    if (vip == nullptr) {
      return not_found(p[2]);
    }
    if (p.size() == 4) {
      if (p[3] == "listen")
        return line(vip->spec.listen.to_string());
      if (p[3] == "protocol")
        return line(to_string(vip->spec.protocol));
      return line(vip->spec.mode == Mode::forward ? "forward" : "steer");
    }
    const BackendSpec* b = find_backend(vip->spec, p[4]);
    if (b == nullptr) {
      return not_found(p[4]);
    }
    if (p[5] == "address")
      return line(b->address.ip.to_string());
    if (p[5] == "weight")
      return line(b->weight);
    if (p[5] == "state")
      return line(to_string(b->state));
    const auto it = vip->slots.find(b->name);
    return line(it != vip->slots.end() ? it->second : 0);
  }
  if (p[1] == "program") {
    const unsigned index = config->xdp.enabled ? if_nametoindex(config->xdp.interface.c_str()) : 0;
    bpf_xdp_query_opts query{};
    query.sz = sizeof(query);
    if (index == 0 || bpf_xdp_query(static_cast<int>(index), 0, &query) != 0 ||
        query.attach_mode == XDP_ATTACHED_NONE) {
      return line("none");
    }
    const bool native =
        query.attach_mode == XDP_ATTACHED_DRV || query.attach_mode == XDP_ATTACHED_HW;
    const uint32_t id = native ? query.drv_prog_id : query.skb_prog_id;
    return "id " + std::to_string(id) + (native ? " native\n" : " generic\n");
  }
  // verdicts/<name>
  const std::string map_path = pin_root_ + "/verdict_stats";
  UniqueFd map(bpf_obj_get(map_path.c_str()));
  if (!map.valid()) {
    return line("unavailable");  // no program has pinned its maps here
  }
  auto counters = xdp::read_counters(map.get(), RINGLB_V_MAX);
  if (!counters) {
    return counters.error();
  }
  for (uint32_t v = 0; v < RINGLB_V_MAX; ++v) {
    if (xdp::verdict_name(v) == p[2]) {
      return line((*counters)[v].packets);
    }
  }
  return not_found(p[2]);
}

// vips/<forward vip>/...: the running config's spec (stat() has checked the path).
Result<std::string> ControlTree::read_forward(const std::vector<std::string>& p) const {
  const auto vip = forward_vip(runtime_, p[1]);
  if (!vip) {
    return not_found(p[1]);
  }
  if (p.size() == 3) {
    if (p[2] == "listen")
      return line(vip->listen.to_string());
    if (p[2] == "mode")
      return line(to_string(vip->mode));
    return line(to_string(vip->protocol));
  }
  const std::string& f = p[4];
  const BackendSpec* b = find_backend(*vip, p[3]);
  if (b == nullptr) {  // pending: exists in the tree, not yet in the config
    return read_pending(p[1], p[3], f);
  }
  if (f == "address")
    return line(b->address.ip.to_string());
  if (f == "weight")
    return line(b->weight);
  if (f == "state")
    return line(to_string(b->state));
  const auto stats = runtime_.backend_stats(p[1], p[3]);
  return line(stats ? to_string(static_cast<HealthState>(
                          stats->health_state.load(std::memory_order_relaxed)))
                    : std::string_view("up"));
}

Result<std::string> ControlTree::read_pending(const std::string& vip, const std::string& backend,
                                              const std::string& file) const {
  std::lock_guard lock(pending_mu_);
  const auto it = pending_.find({vip, backend});
  if (it == pending_.end()) {
    return not_found(backend);
  }
  if (file == "address")
    return line(it->second.address);
  if (file == "weight")
    return line(it->second.weight);
  if (file == "state")
    return line(to_string(it->second.state));
  if (file == "health")
    return line("pending");
  return line(uint64_t{0});  // counters of a backend that has had no connection
}

bool ControlTree::is_pending(const std::string& vip, const std::string& backend) const {
  std::lock_guard lock(pending_mu_);
  return pending_.count({vip, backend}) != 0;
}

Result<NodeInfo> ControlTree::stat(std::string_view path) const {
  const auto p = split(path);
  const NodeInfo dir{NodeKind::directory, true, false};
  if (p.empty()) {
    return dir;
  }
  if (p.size() == 1) {
    if (p[0] == "stats" || p[0] == "metrics") {
      return NodeInfo{NodeKind::file, true, false};
    }
    if (p[0] == "reload") {
      return NodeInfo{NodeKind::file, false, true};
    }
    if (p[0] == "vips" || p[0] == "workers" || p[0] == "xdp") {
      return dir;
    }
    return not_found(path);
  }
  if (p[0] == "xdp") {
    const NodeInfo file{NodeKind::file, true, false};
    if (p.size() == 2 && (p[1] == "interface" || p[1] == "program" || p[1] == "pin_path")) {
      return file;
    }
    if (p[1] == "vips") {
      return stat_xdp_vips(pin_root_, p, path);
    }
    if (p[1] == "verdicts") {
      if (p.size() == 2) {
        return dir;
      }
      const auto names = verdict_names();
      if (p.size() == 3 && std::find(names.begin(), names.end(), p[2]) != names.end()) {
        return file;
      }
    }
    return not_found(path);
  }
  if (p[0] == "workers") {
    size_t index = 0;
    auto [end, ec] = std::from_chars(p[1].data(), p[1].data() + p[1].size(), index);
    if (ec != std::errc{} || end != p[1].data() + p[1].size() || index >= runtime_.worker_count() ||
        p.size() > 3) {
      return not_found(path);
    }
    if (p.size() == 2) {
      return dir;
    }
    for (const auto& name : worker_files()) {
      if (name == p[2]) {
        return NodeInfo{NodeKind::file, true, false};
      }
    }
    return not_found(path);
  }
  if (p[0] != "vips") {
    return not_found(path);
  }
  auto vip = runtime_.find_vip(p[1]);
  if (!vip) {
    if (auto forward = forward_vip(runtime_, p[1])) {
      return stat_spec_vip(*forward, std::span(p).subspan(1), kForwardBackendFiles, path,
                           p.size() >= 4 && is_pending(p[1], p[3]));
    }
    return not_found(path);
  }
  if (p.size() == 2) {
    return dir;
  }
  if (p.size() == 3) {
    if (p[2] == "backends") {
      return dir;
    }
    if (const auto* f = vip_file(p[2])) {
      return NodeInfo{NodeKind::file, true, f->second};
    }
    return not_found(path);
  }
  if (p[2] != "backends" || p.size() > 5) {
    return not_found(path);
  }
  const bool exists = vip->state().load()->pool->find(p[3]) != nullptr || is_pending(p[1], p[3]);
  if (!exists) {
    return not_found(path);
  }
  if (p.size() == 4) {
    return dir;
  }
  if (const auto* f = backend_file(p[4])) {
    return NodeInfo{NodeKind::file, f->readable, f->writable};
  }
  return not_found(path);
}

Result<std::vector<std::string>> ControlTree::list(std::string_view path) const {
  auto info = stat(path);
  if (!info) {
    return info.error();
  }
  if (info->kind != NodeKind::directory) {
    return Error{std::string(path) + " is not a directory", ENOTDIR};
  }
  const auto p = split(path);
  std::vector<std::string> out;
  if (p.empty()) {
    return std::vector<std::string>{"metrics", "reload", "stats", "vips", "workers", "xdp"};
  }
  if (p[0] == "xdp") {
    if (p.size() == 1) {
      return std::vector<std::string>{"interface", "pin_path", "program", "verdicts", "vips"};
    }
    if (p[1] == "verdicts") {
      return verdict_names();
    }
    auto vips = pinned_vips(pin_root_, false);
    if (!vips) {
      return vips.error();
    }
    if (p.size() == 2) {
      for (const auto& v : *vips) {
        out.push_back(v.spec.name);
      }
      return out;
    }
    const PinnedVip* vip = find_pinned(*vips, p[2]);
    if (p.size() == 3) {
      out.assign(std::begin(kForwardVipFiles), std::end(kForwardVipFiles));
      out.emplace_back("backends");
      return out;
    }
    if (p.size() == 4) {
      for (const auto& b : vip->spec.backends) {
        out.push_back(b.name);
      }
      return out;
    }
    for (const auto& f : kXdpBackendFiles) {
      out.emplace_back(f.first);
    }
    return out;
  }
  if (p[0] == "workers") {
    if (p.size() == 1) {
      for (size_t i = 0; i < runtime_.worker_count(); ++i) {
        out.push_back(std::to_string(i));
      }
      return out;
    }
    return worker_files();
  }
  if (p.size() == 1) {
    // Snapshots held in locals: the health monitor may publish new ones meanwhile.
    const auto set = runtime_.vips().load();
    for (const auto& vip : set->vips) {
      out.push_back(vip->name());
    }
    const auto config = runtime_.config();
    for (const auto& vip : config->vips) {
      if (vip.mode == Mode::forward) {
        out.push_back(vip.name);
      }
    }
    return out;
  }
  if (auto forward = forward_vip(runtime_, p[1]); forward && !runtime_.find_vip(p[1])) {
    if (p.size() == 2) {
      out.assign(std::begin(kForwardVipFiles), std::end(kForwardVipFiles));
      out.emplace_back("backends");
    } else if (p.size() == 3) {
      for (const auto& b : forward->backends) {
        out.push_back(b.name);
      }
      std::lock_guard lock(pending_mu_);
      for (const auto& [key, pending] : pending_) {
        if (key.first == p[1]) {
          out.push_back(key.second);
        }
      }
    } else {
      for (const auto& f : kForwardBackendFiles) {
        out.emplace_back(f.first);
      }
    }
    return out;
  }
  if (p.size() == 2) {
    for (const auto& f : kVipFiles) {
      out.emplace_back(f.first);
    }
    out.emplace_back("backends");
    return out;
  }
  if (p.size() == 3) {
    auto vip = runtime_.find_vip(p[1]);
    const auto state = vip->state().load();
    for (const auto& b : state->pool->backends()) {
      out.push_back(b.spec.name);
    }
    std::lock_guard lock(pending_mu_);
    for (const auto& [key, pending] : pending_) {
      if (key.first == p[1]) {
        out.push_back(key.second);
      }
    }
    return out;
  }
  for (const auto& f : kBackendFiles) {
    out.emplace_back(f.name);
  }
  return out;
}

Result<std::string> ControlTree::read(std::string_view path) const {
  auto info = stat(path);
  if (!info) {
    return info.error();
  }
  if (info->kind == NodeKind::directory) {
    return Error{std::string(path) + " is a directory", EISDIR};
  }
  if (!info->readable) {
    return Error{std::string(path) + " is write-only", EACCES};
  }
  const auto p = split(path);
  if (p.size() == 1) {
    // The XDP plane's counters join the daemon's when a program has pinned its maps.
    std::vector<ringlb_counter> verdicts;
    if (UniqueFd map(bpf_obj_get((pin_root_ + "/verdict_stats").c_str())); map.valid()) {
      if (auto counters = xdp::read_counters(map.get(), RINGLB_V_MAX)) {
        verdicts = std::move(*counters);
      }
    }
    if (p[0] == "stats") {
      std::string out = runtime_.render_stats();
      for (uint32_t v = 0; v < verdicts.size(); ++v) {
        const std::string prefix = "xdp.verdict." + std::string(xdp::verdict_name(v)) + ".";
        out += prefix + "packets " + std::to_string(verdicts[v].packets) + "\n";
        out += prefix + "bytes " + std::to_string(verdicts[v].bytes) + "\n";
      }
      return out;
    }
    std::string out = runtime_.render_metrics();
    if (!verdicts.empty()) {
      out +=
          "# HELP ringlb_xdp_packets_total packets by XDP verdict, all CPUs\n"
          "# TYPE ringlb_xdp_packets_total counter\n";
      for (uint32_t v = 0; v < verdicts.size(); ++v) {
        out += "ringlb_xdp_packets_total{verdict=\"" + std::string(xdp::verdict_name(v)) + "\"} " +
               std::to_string(verdicts[v].packets) + "\n";
      }
    }
    return out;
  }
  if (p[0] == "xdp") {
    return read_xdp(p);
  }
  if (p[0] == "workers") {
    const size_t index = std::stoul(p[1]);
    const WorkerInfo w = runtime_.worker_info(index);
    if (p[2] == "cpu") {
      return w.cpu < 0 ? std::string("none\n") : line(static_cast<uint64_t>(w.cpu));
    }
    if (p[2] == "cycles") {
      return perf_value(w.cycles_fd);
    }
    if (p[2] == "instructions") {
      return perf_value(w.instructions_fd);
    }
    if (p[2] == "task_clock_ns") {
      return perf_value(w.task_clock_fd);
    }
    bool found = false;
    const uint64_t v = worker_counter(runtime_.worker_stats(index), p[2], found);
    return line(v);
  }
  auto vip = runtime_.find_vip(p[1]);
  if (!vip) {
    return read_forward(p);
  }
  const auto state = vip->state().load();
  const VipSpec& spec = state->spec;
  if (p.size() == 3) {
    const std::string& f = p[2];
    if (f == "listen")
      return line(spec.listen.to_string());
    if (f == "mode")
      return line(to_string(spec.mode));
    if (f == "protocol")
      return line(to_string(spec.protocol));
    if (f == "policy")
      return line(to_string(spec.policy));
    if (f == "connect_timeout_ms")
      return line(spec.connect_timeout_ms);
    if (f == "connect_retries")
      return line(spec.connect_retries);
    if (f == "idle_timeout_ms")
      return line(spec.idle_timeout_ms);
    if (f == "max_connection_age_ms")
      return line(spec.max_connection_age_ms);
    if (f == "send_proxy_v2")
      return line(spec.send_proxy_v2 ? "true" : "false");
    return not_found(path);
  }
  const std::string& f = p[4];
  const Backend* b = state->pool->find(p[3]);
  if (b == nullptr) {  // pending: exists in the tree, not yet in the pool
    return read_pending(p[1], p[3], f);
  }
  const BackendStats& s = *b->stats;
  if (f == "address")
    return line(b->spec.address.to_string());
  if (f == "weight")
    return line(b->spec.weight);
  if (f == "state")
    return line(to_string(b->spec.state));
  if (f == "health")
    return line(
        to_string(static_cast<HealthState>(s.health_state.load(std::memory_order_relaxed))));
  if (f == "active")
    return line(static_cast<uint64_t>(s.active.load(std::memory_order_relaxed)));
  if (f == "connections")
    return line(s.connections.load(std::memory_order_relaxed));
  if (f == "bytes_in")
    return line(s.bytes_in.load(std::memory_order_relaxed));
  if (f == "bytes_out")
    return line(s.bytes_out.load(std::memory_order_relaxed));
  if (f == "failures")
    return line(s.failures());
  if (f == "connect_refused")
    return line(s.connect_refused.load(std::memory_order_relaxed));
  if (f == "connect_timeouts")
    return line(s.connect_timeouts.load(std::memory_order_relaxed));
  if (f == "connect_errors")
    return line(s.connect_errors.load(std::memory_order_relaxed));
  return not_found(path);
}

Result<void> ControlTree::write(std::string_view path, std::string_view raw) {
  auto info = stat(path);
  if (!info) {
    return info.error();
  }
  if (info->kind == NodeKind::directory) {
    return Error{std::string(path) + " is a directory", EISDIR};
  }
  const auto p = split(path);
  if (!info->writable) {
    return read_only(p.back());
  }
  const std::string_view value = trim_newline(raw);
  if (p[0] == "xdp") {
    // xdp/vips/<vip>/backends/<b>/weight|state: a change of the daemon's config, which
    // the publish hook writes to the maps (a VIP only `ringlb xdp` knows: ENOENT).
    return write_backend(p[2], p[4], p[5], value);
  }
  if (p.size() == 1) {  // reload
    return reload_();
  }
  if (p.size() == 3) {
    return write_vip(p[1], p[2], value);
  }
  if (is_pending(p[1], p[3])) {
    return write_pending(p[1], p[3], p[4], value);
  }
  return write_backend(p[1], p[3], p[4], value);
}

Result<void> ControlTree::write_vip(const std::string& vip, const std::string& file,
                                    std::string_view value) {
  // Parse first: a bad value changes nothing.
  std::function<void(VipSpec&)> change;
  if (file == "policy") {
    auto policy = parse_policy(value);
    if (!policy) {
      return invalid("policy: " + choice_error(kPolicyWords, value));
    }
    change = [p = *policy](VipSpec& v) { v.policy = p; };
  } else if (file == "send_proxy_v2") {
    if (value != "true" && value != "false" && value != "1" && value != "0") {
      return invalid("send_proxy_v2: expected true or false, got \"" + std::string(value) + "\"");
    }
    change = [on = value == "true" || value == "1"](VipSpec& v) { v.send_proxy_v2 = on; };
  } else {
    if (const auto* field = vip_uint_field(file)) {
      auto v = parse_uint(value, field->range);
      if (!v) {
        return invalid(file + ": " + v.error().message);
      }
      change = [member = field->member, n = *v](VipSpec& spec) { spec.*member = n; };
    }
  }
  if (!change) {
    return read_only(file);
  }
  return runtime_.edit([&](Config& config) -> Result<void> {
    VipSpec* spec = find_vip(config.vips, vip);
    // A reload may have made it a forward VIP since the path was looked up: forward
    // VIPs have no such file.
    if (spec == nullptr || spec->mode != Mode::proxy) {
      return Error{"no vip named " + vip + " with a " + file, ENOENT};
    }
    change(*spec);
    return {};
  });
}

Result<void> ControlTree::write_backend(const std::string& vip, const std::string& backend,
                                        const std::string& file, std::string_view value) {
  if (file == "shutdown") {
    return runtime_.shutdown_backend(vip, backend);
  }
  // Parsed first where the value alone decides; an address depends on the VIP's mode,
  // so it is parsed under the writer lock, against the config it changes.
  std::function<Result<void>(const VipSpec&, BackendSpec&)> change;
  if (file == "weight") {
    auto w = parse_uint(value, kBackendWeight.range);
    if (!w) {
      return invalid("weight: " + w.error().message);
    }
    change = [w = *w](const VipSpec&, BackendSpec& b) -> Result<void> {
      b.weight = w;
      return {};
    };
  } else if (file == "state") {
    auto state = parse_admin_state(value);
    if (!state) {
      return invalid("state: " + choice_error(kAdminStateWords, value));
    }
    change = [s = *state](const VipSpec&, BackendSpec& b) -> Result<void> {
      b.state = s;
      return {};
    };
  } else if (file == "address") {
    change = [value](const VipSpec& v, BackendSpec& b) -> Result<void> {
      auto address = parse_backend_address(value, v.mode);
      if (!address) {
        return invalid("address: " + address.error().message);
      }
      b.address = *address;
      return {};
    };
  } else {
    return read_only(file);
  }
  return runtime_.edit([&](Config& config) -> Result<void> {
    VipSpec* spec = find_vip(config.vips, vip);
    BackendSpec* b = spec != nullptr ? find_backend(*spec, backend) : nullptr;
    if (b == nullptr) {
      return Error{"no backend named " + backend, ENOENT};
    }
    return change(*spec, *b);
  });
}

Result<void> ControlTree::write_pending(const std::string& vip, const std::string& backend,
                                        const std::string& file, std::string_view value) {
  std::lock_guard lock(pending_mu_);
  auto it = pending_.find({vip, backend});
  if (it == pending_.end()) {
    return not_found(backend);
  }
  Pending& pending = it->second;
  if (file == "weight") {
    auto w = parse_uint(value, kBackendWeight.range);
    if (!w) {
      return invalid("weight: " + w.error().message);
    }
    pending.weight = *w;
    return {};
  }
  if (file == "state") {
    auto state = parse_admin_state(value);
    if (!state) {
      return invalid("state: " + choice_error(kAdminStateWords, value));
    }
    pending.state = *state;
    return {};
  }
  if (file != "address") {
    return Error{backend + " has no address yet: write its address first", EINVAL};
  }
  // The address completes the backend: it joins the pool. Checked against the config it
  // changes, under the writer lock (a reload may have added the name meanwhile).
  auto added = runtime_.edit([&](Config& config) -> Result<void> {
    VipSpec* v = find_vip(config.vips, vip);
    if (v == nullptr) {
      return Error{"no vip named " + vip, ENOENT};
    }
    auto address = parse_backend_address(value, v->mode);
    if (!address) {
      return invalid("address: " + address.error().message);
    }
    if (find_backend(*v, backend) != nullptr) {
      return Error{"backend " + backend + " exists", EEXIST};
    }
    v->backends.push_back(BackendSpec{
        .name = backend, .address = *address, .weight = pending.weight, .state = pending.state});
    return {};
  });
  if (added) {
    pending_.erase(it);
  }
  return added;
}

Result<void> ControlTree::make_directory(std::string_view path) {
  const auto p = split(path);
  if (p.size() != 4 || p[0] != "vips" || p[2] != "backends") {
    return Error{"only backends can be created: mkdir vips/<vip>/backends/<name>", EPERM};
  }
  auto vip = runtime_.find_vip(p[1]);
  const auto forward = vip ? std::nullopt : forward_vip(runtime_, p[1]);
  if (!vip && !forward) {
    return not_found(path);
  }
  if (!is_valid_name(p[3])) {
    return invalid("backend names are 1..64 characters of [A-Za-z0-9_.-]");
  }
  if (vip ? vip->state().load()->pool->find(p[3]) != nullptr
          : find_backend(*forward, p[3]) != nullptr) {
    return Error{"backend " + p[3] + " exists", EEXIST};
  }
  std::lock_guard lock(pending_mu_);
  if (!pending_.emplace(std::pair{p[1], p[3]}, Pending{}).second) {
    return Error{"backend " + p[3] + " exists", EEXIST};
  }
  return {};
}

Result<void> ControlTree::remove_directory(std::string_view path) {
  const auto p = split(path);
  if (p.size() != 4 || p[0] != "vips" || p[2] != "backends") {
    return Error{"only backends can be removed: rmdir vips/<vip>/backends/<name>", EPERM};
  }
  {
    std::lock_guard lock(pending_mu_);
    if (pending_.erase({p[1], p[3]}) != 0) {
      return {};
    }
  }
  // The checks that guard a removal run under the writer lock that applies it
  // (Runtime::edit): two rmdirs at once cannot both pass "not the last backend".
  // removing_ holds the backends an rmdir is draining; it is only touched in edits.
  const std::pair<std::string, std::string> key{p[1], p[3]};
  auto remaining = [&](const VipSpec& spec) {
    size_t n = 0;
    for (const auto& b : spec.backends) {
      n += b.name != p[3] && removing_.count({p[1], b.name}) == 0 ? 1 : 0;
    }
    return n;
  };
  Mode mode = Mode::proxy;
  auto started = runtime_.edit([&](Config& config) -> Result<void> {
    VipSpec* spec = find_vip(config.vips, p[1]);
    BackendSpec* b = spec != nullptr ? find_backend(*spec, p[3]) : nullptr;
    if (b == nullptr || removing_.count(key) != 0) {
      return not_found(path);
    }
    if (remaining(*spec) == 0) {
      return Error{"a vip keeps at least one backend: set its state to down instead", EBUSY};
    }
    mode = spec->mode;
    if (mode == Mode::forward) {
      // A forward backend goes at once: the XDP plane counts no connections to wait
      // for (set its state to drain first to let established flows finish).
      std::erase_if(spec->backends, [&](const BackendSpec& s) { return s.name == p[3]; });
      return {};
    }
    // Drain: no new connections, established ones finish, up to the drain timeout.
    b->state = AdminState::drain;
    removing_.insert(key);
    return {};
  });
  if (!started || mode == Mode::forward) {
    return started;
  }
  auto vip = runtime_.find_vip(p[1]);
  const Backend* b = vip ? vip->state().load()->pool->find(p[3]) : nullptr;
  const auto stats = b != nullptr ? b->stats : nullptr;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(runtime_.config()->daemon.drain_timeout_ms);
  while (stats && stats->active.load(std::memory_order_relaxed) > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (stats && stats->active.load(std::memory_order_relaxed) > 0) {
    (void)runtime_.shutdown_backend(p[1], p[3]);
  }
  auto removed = runtime_.edit([&](Config& config) -> Result<void> {
    removing_.erase(key);
    VipSpec* spec = find_vip(config.vips, p[1]);
    if (spec == nullptr) {
      return Error{"no vip named " + p[1], ENOENT};
    }
    std::erase_if(spec->backends, [&](const BackendSpec& s) { return s.name == p[3]; });
    return {};
  });
  if (!removed) {
    // Nothing was removed (the VIP went away meanwhile, or the XDP plane refused): the
    // backend no longer counts as being removed.
    (void)runtime_.edit([&](Config&) -> Result<void> {
      removing_.erase(key);
      return {};
    });
  }
  return removed;
}

}  // namespace ringlb::control
