// vips/: ringlbd's VIPs and their backends. A proxy VIP's files show its published
// snapshot; a forward VIP (served by the XDP program) shows the running config. Stores
// parse first with the model's rules and messages (model/fields.h), then apply through
// TreeState's edits.
#include "node.h"
#include "ringlb/model/fields.h"
#include "ringlb/model/health.h"

namespace ringlb::control {

// ---- Files of any VIP or backend (pinned VIPs under xdp/ share them) ----

Result<std::string> show_listen(const Ctx& ctx, const Node&) {
  return line(ctx.spec->listen.to_string());
}

Result<std::string> show_protocol(const Ctx& ctx, const Node&) {
  return line(to_string(ctx.spec->protocol));
}

Result<std::string> show_address(const Ctx& ctx, const Node&) {
  const SocketAddress& address = ctx.backend_spec->address;
  // A forward VIP's backend is an IP without port: the packet keeps its own.
  return line(ctx.spec->mode == Mode::forward ? address.ip.to_string() : address.to_string());
}

Result<std::string> show_weight(const Ctx& ctx, const Node&) {
  return line(ctx.backend_spec->*kBackendWeight.member);
}

Result<std::string> show_state(const Ctx& ctx, const Node&) {
  return line(to_string(ctx.backend_spec->state));
}

Result<void> store_weight(Ctx& ctx, const Node& node, std::string_view value) {
  auto weight = parse_uint(value, kBackendWeight.range);
  if (!weight) {
    return refused(node.name, weight.error());
  }
  return ctx.tree.edit_backend(ctx.vip, ctx.backend,
                               [w = *weight](const VipSpec&, BackendSpec& b) -> Result<void> {
                                 b.*kBackendWeight.member = w;
                                 return {};
                               });
}

Result<void> store_state(Ctx& ctx, const Node& node, std::string_view value) {
  auto state = parse_choice(value, parse_admin_state, kAdminStateWords);
  if (!state) {
    return refused(node.name, state.error());
  }
  return ctx.tree.edit_backend(ctx.vip, ctx.backend,
                               [s = *state](const VipSpec&, BackendSpec& b) -> Result<void> {
                                 b.state = s;
                                 return {};
                               });
}

namespace {

// ---- A proxy VIP's settings ----

Result<std::string> show_mode(const Ctx& ctx, const Node&) {
  return line(to_string(ctx.spec->mode));
}

Result<std::string> show_policy(const Ctx& ctx, const Node&) {
  return line(to_string(ctx.spec->policy));
}

Result<std::string> show_vip_uint(const Ctx& ctx, const Node& node) {
  return line(ctx.spec->*kVipUintFields[node.arg].member);
}

Result<std::string> show_send_proxy_v2(const Ctx& ctx, const Node&) {
  return line(ctx.spec->send_proxy_v2 ? "true" : "false");
}

Result<void> store_policy(Ctx& ctx, const Node& node, std::string_view value) {
  auto policy = parse_choice(value, parse_policy, kPolicyWords);
  if (!policy) {
    return refused(node.name, policy.error());
  }
  return ctx.tree.edit_vip(ctx.vip, node.name, [p = *policy](VipSpec& v) { v.policy = p; });
}

Result<void> store_vip_uint(Ctx& ctx, const Node& node, std::string_view value) {
  const auto& field = kVipUintFields[node.arg];
  auto parsed = parse_uint(value, field.range);
  if (!parsed) {
    return refused(node.name, parsed.error());
  }
  return ctx.tree.edit_vip(ctx.vip, node.name,
                           [member = field.member, n = *parsed](VipSpec& v) { v.*member = n; });
}

Result<void> store_send_proxy_v2(Ctx& ctx, const Node& node, std::string_view value) {
  if (value != "true" && value != "false" && value != "1" && value != "0") {
    return invalid("send_proxy_v2: expected true or false, got \"" + std::string(value) + "\"");
  }
  return ctx.tree.edit_vip(ctx.vip, node.name, [on = value == "true" || value == "1"](VipSpec& v) {
    v.send_proxy_v2 = on;
  });
}

// ---- A backend in the pool (proxy) or in the running config (forward) ----

Result<std::string> show_health(const Ctx& ctx, const Node&) {
  const auto state = ctx.live->stats->health_state.load(std::memory_order_relaxed);
  return line(to_string(static_cast<HealthState>(state)));
}

// A forward backend's health is in the runtime's counters, kept by name.
Result<std::string> show_forward_health(const Ctx& ctx, const Node&) {
  const auto stats = ctx.tree.runtime.backend_stats(ctx.vip, ctx.backend);
  return line(stats ? to_string(static_cast<HealthState>(
                          stats->health_state.load(std::memory_order_relaxed)))
                    : std::string_view("up"));
}

Result<std::string> show_backend_counter(const Ctx& ctx, const Node& node) {
  return line(backend_values(*ctx.live->stats)[node.arg]);
}

// An address depends on the VIP's mode, so it is parsed under the writer lock, against
// the config it changes.
Result<void> store_address(Ctx& ctx, const Node& node, std::string_view value) {
  return ctx.tree.edit_backend(ctx.vip, ctx.backend,
                               [&](const VipSpec& vip, BackendSpec& b) -> Result<void> {
                                 auto address = parse_backend_address(value, vip.mode);
                                 if (!address) {
                                   return refused(node.name, address.error());
                                 }
                                 b.address = *address;
                                 return {};
                               });
}

Result<void> store_shutdown(Ctx& ctx, const Node&, std::string_view) {
  return ctx.tree.runtime.shutdown_backend(ctx.vip, ctx.backend);
}

// ---- A pending backend: made by mkdir, no address yet ----

Result<Pending> pending(const Ctx& ctx) {
  auto p = ctx.tree.pending(ctx.vip, ctx.backend);
  return p ? Result<Pending>(*p) : Result<Pending>(not_found(ctx.backend));
}

Result<std::string> show_pending_address(const Ctx& ctx, const Node&) {
  auto p = pending(ctx);
  return p ? line(p->address) : Result<std::string>(p.error());
}

Result<std::string> show_pending_weight(const Ctx& ctx, const Node&) {
  auto p = pending(ctx);
  return p ? line(p->weight) : Result<std::string>(p.error());
}

Result<std::string> show_pending_state(const Ctx& ctx, const Node&) {
  auto p = pending(ctx);
  return p ? line(to_string(p->state)) : Result<std::string>(p.error());
}

Result<std::string> show_pending_health(const Ctx& ctx, const Node&) {
  auto p = pending(ctx);
  return p ? line("pending") : Result<std::string>(p.error());
}

// Counters of a backend that has had no connection.
Result<std::string> show_pending_counter(const Ctx& ctx, const Node&) {
  auto p = pending(ctx);
  return p ? line(uint64_t{0}) : Result<std::string>(p.error());
}

Result<void> store_pending_weight(Ctx& ctx, const Node& node, std::string_view value) {
  auto weight = parse_uint(value, kBackendWeight.range);
  if (!weight) {
    return refused(node.name, weight.error());
  }
  return ctx.tree.update_pending(ctx.vip, ctx.backend, [w = *weight](Pending& p) { p.weight = w; });
}

Result<void> store_pending_state(Ctx& ctx, const Node& node, std::string_view value) {
  auto state = parse_choice(value, parse_admin_state, kAdminStateWords);
  if (!state) {
    return refused(node.name, state.error());
  }
  return ctx.tree.update_pending(ctx.vip, ctx.backend, [s = *state](Pending& p) { p.state = s; });
}

Result<void> store_pending_address(Ctx& ctx, const Node&, std::string_view value) {
  return ctx.tree.complete_pending(ctx.vip, ctx.backend, value);
}

Result<void> store_pending_shutdown(Ctx& ctx, const Node&, std::string_view) {
  return invalid(ctx.backend + " has no address yet: write its address first");
}

// A backend file in both forms: of a backend in the pool or config, and of a pending one.
struct BackendFile {
  std::string_view name;
  Show show = nullptr;
  Store store = nullptr;
  Show pending_show = nullptr;
  Store pending_store = nullptr;
  size_t arg = 0;
};

constexpr BackendFile kAddress{"address", show_address, store_address, show_pending_address,
                               store_pending_address};
constexpr BackendFile kWeight{"weight", show_weight, store_weight, show_pending_weight,
                              store_pending_weight};
constexpr BackendFile kState{"state", show_state, store_state, show_pending_state,
                             store_pending_state};

// The counters a proxy backend's directory shows, of telemetry::kBackendCounters.
constexpr std::string_view kBackendCounterFiles[] = {
    "active",   "connections",     "bytes_in",         "bytes_out",
    "failures", "connect_refused", "connect_timeouts", "connect_errors"};

std::vector<BackendFile> proxy_backend_files() {
  std::vector<BackendFile> files{
      kAddress, kWeight, kState, {"health", show_health, nullptr, show_pending_health}};
  for (const auto name : kBackendCounterFiles) {
    files.push_back({name, show_backend_counter, nullptr, show_pending_counter, nullptr,
                     *telemetry::find_counter(telemetry::kBackendCounters, name)});
  }
  files.push_back({"shutdown", nullptr, store_shutdown, nullptr, store_pending_shutdown});
  return files;
}

// A forward backend has no connection counters: the XDP program's are per address
// (ringlb stats).
std::vector<BackendFile> forward_backend_files() {
  return {kAddress, kWeight, kState, {"health", show_forward_health, nullptr, show_pending_health}};
}

// The directory of a backend (`pending`: of a pending one) with `files`.
Dir backend_dir(const std::vector<BackendFile>& files, bool pending) {
  Dir dir;
  for (const auto& f : files) {
    dir.nodes.push_back({.name = f.name,
                         .show = pending ? f.pending_show : f.show,
                         .store = pending ? f.pending_store : f.store,
                         .arg = f.arg});
  }
  return dir;
}

// ---- backends/ of a VIP ----

Result<std::vector<std::string>> proxy_backend_names(const Ctx& ctx) {
  std::vector<std::string> names;
  for (const auto& b : ctx.state->pool->backends()) {
    names.push_back(b.spec.name);
  }
  for (auto& name : ctx.tree.pending_names(ctx.vip)) {
    names.push_back(std::move(name));
  }
  return names;
}

Result<std::vector<std::string>> forward_backend_names(const Ctx& ctx) {
  std::vector<std::string> names;
  for (const auto& b : ctx.spec->backends) {
    names.push_back(b.name);
  }
  for (auto& name : ctx.tree.pending_names(ctx.vip)) {
    names.push_back(std::move(name));
  }
  return names;
}

// A backend in `backend` (nullptr: none by that name) or a pending one.
const Node* enter_backend(Ctx& ctx, const std::string& name, const BackendSpec* backend,
                          const Node& live, const Node& pending) {
  ctx.backend = name;
  if (backend != nullptr) {
    ctx.backend_spec = backend;
    return &live;
  }
  return ctx.tree.pending(ctx.vip, name) ? &pending : nullptr;
}

Result<const Node*> enter_proxy_backend(Ctx& ctx, const std::string& name) {
  static const Dir live_dir = backend_dir(proxy_backend_files(), false);
  static const Dir pending_dir = backend_dir(proxy_backend_files(), true);
  static const Node live{.name = "", .dir = &live_dir};
  static const Node pending{.name = "", .dir = &pending_dir};
  ctx.live = ctx.state->pool->find(name);
  return enter_backend(ctx, name, ctx.live != nullptr ? &ctx.live->spec : nullptr, live, pending);
}

Result<const Node*> enter_forward_backend(Ctx& ctx, const std::string& name) {
  static const Dir live_dir = backend_dir(forward_backend_files(), false);
  static const Dir pending_dir = backend_dir(forward_backend_files(), true);
  static const Node live{.name = "", .dir = &live_dir};
  static const Node pending{.name = "", .dir = &pending_dir};
  return enter_backend(ctx, name, find_backend(*ctx.spec, name), live, pending);
}

// ---- vips/<vip>/ ----

const Dir& proxy_vip_dir() {
  static const Dir backends{
      .nodes = {}, .names = proxy_backend_names, .enter = enter_proxy_backend};
  static const Dir dir = [] {
    Dir d{.nodes = {{.name = "listen", .show = show_listen},
                    {.name = "mode", .show = show_mode},
                    {.name = "protocol", .show = show_protocol},
                    {.name = "policy", .show = show_policy, .store = store_policy}}};
    for (size_t i = 0; i < kVipUintFields.size(); ++i) {
      d.nodes.push_back({.name = kVipUintFields[i].name,
                         .show = show_vip_uint,
                         .store = store_vip_uint,
                         .arg = i});
    }
    d.nodes.push_back(
        {.name = "send_proxy_v2", .show = show_send_proxy_v2, .store = store_send_proxy_v2});
    d.nodes.push_back({.name = "backends", .dir = &backends});
    return d;
  }();
  return dir;
}

const Dir& forward_vip_dir() {
  static const Dir backends{
      .nodes = {}, .names = forward_backend_names, .enter = enter_forward_backend};
  static const Dir dir{.nodes = {{.name = "listen", .show = show_listen},
                                 {.name = "mode", .show = show_mode},
                                 {.name = "protocol", .show = show_protocol},
                                 {.name = "backends", .dir = &backends}}};
  return dir;
}

// Proxy VIPs (the published set), then forward VIPs (the running config).
Result<std::vector<std::string>> vip_names(const Ctx& ctx) {
  std::vector<std::string> names;
  // Snapshots held in locals: the health monitor may publish new ones meanwhile.
  const auto set = ctx.tree.runtime.vips().load();
  for (const auto& vip : set->vips) {
    names.push_back(vip->name());
  }
  const auto config = ctx.tree.runtime.config();
  for (const auto& vip : config->vips) {
    if (vip.mode == Mode::forward) {
      names.push_back(vip.name);
    }
  }
  return names;
}

// Forward-mode VIPs have no VipRuntime (the XDP program serves them, not the workers):
// theirs is the running config's spec, and writes go through Runtime::edit like any
// other, which ringlbd's publish hook writes to the pinned XDP maps.
Result<const Node*> enter_vip(Ctx& ctx, const std::string& name) {
  static const Node proxy{.name = "", .dir = &proxy_vip_dir()};
  static const Node forward{.name = "", .dir = &forward_vip_dir()};
  ctx.vip = name;
  if ((ctx.proxy = ctx.tree.runtime.find_vip(name))) {
    ctx.state = ctx.proxy->state().load();
    ctx.spec = &ctx.state->spec;
    return &proxy;
  }
  const auto config = ctx.tree.runtime.config();
  const VipSpec* spec = find_vip(config->vips, name);
  if (spec == nullptr || spec->mode != Mode::forward) {
    return nullptr;
  }
  ctx.spec = &ctx.spec_copy.emplace(*spec);
  return &forward;
}

}  // namespace

const Dir& vips_dir() {
  static const Dir dir{.nodes = {}, .names = vip_names, .enter = enter_vip};
  return dir;
}

}  // namespace ringlb::control
