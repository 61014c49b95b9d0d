// TreeState: the changes the control tree makes to the running config, and its pending
// backends. Every check that guards a change runs inside the Runtime::edit that applies
// it, under the writer lock: a check and its change cannot be split by another writer.
#include <cerrno>
#include <chrono>
#include <thread>

#include "node.h"
#include "ringlb/model/fields.h"

namespace ringlb::control {

Result<void> TreeState::edit_vip(const std::string& vip, std::string_view file,
                                 const std::function<void(VipSpec&)>& change) {
  return runtime.edit([&](Config& config) -> Result<void> {
    VipSpec* spec = find_vip(config.vips, vip);
    // A reload may have made it a forward VIP since the path was looked up: forward
    // VIPs have no such file.
    if (spec == nullptr || spec->mode != Mode::proxy) {
      return Error{"no vip named " + vip + " with a " + std::string(file), ENOENT};
    }
    change(*spec);
    return {};
  });
}

Result<void> TreeState::edit_backend(
    const std::string& vip, const std::string& backend,
    const std::function<Result<void>(const VipSpec&, BackendSpec&)>& change) {
  return runtime.edit([&](Config& config) -> Result<void> {
    VipSpec* spec = find_vip(config.vips, vip);
    BackendSpec* b = spec != nullptr ? find_backend(*spec, backend) : nullptr;
    if (b == nullptr) {
      return Error{"no backend named " + backend, ENOENT};
    }
    return change(*spec, *b);
  });
}

std::vector<std::string> TreeState::pending_names(const std::string& vip) const {
  std::vector<std::string> names;
  std::lock_guard lock(pending_mu_);
  for (const auto& [key, pending] : pending_) {
    if (key.first == vip) {
      names.push_back(key.second);
    }
  }
  return names;
}

std::optional<Pending> TreeState::pending(const std::string& vip,
                                          const std::string& backend) const {
  std::lock_guard lock(pending_mu_);
  const auto it = pending_.find({vip, backend});
  return it != pending_.end() ? std::optional<Pending>(it->second) : std::nullopt;
}

Result<void> TreeState::update_pending(const std::string& vip, const std::string& backend,
                                       const std::function<void(Pending&)>& change) {
  std::lock_guard lock(pending_mu_);
  const auto it = pending_.find({vip, backend});
  if (it == pending_.end()) {
    return not_found(backend);
  }
  change(it->second);
  return {};
}

Result<void> TreeState::complete_pending(const std::string& vip, const std::string& backend,
                                         std::string_view address) {
  std::lock_guard lock(pending_mu_);
  const auto it = pending_.find({vip, backend});
  if (it == pending_.end()) {
    return not_found(backend);
  }
  const Pending& pending = it->second;
  // The address completes the backend: it joins the pool. Checked against the config it
  // changes, under the writer lock (a reload may have added the name meanwhile).
  auto added = runtime.edit([&](Config& config) -> Result<void> {
    VipSpec* v = find_vip(config.vips, vip);
    if (v == nullptr) {
      return Error{"no vip named " + vip, ENOENT};
    }
    auto parsed = parse_backend_address(address, v->mode);
    if (!parsed) {
      return refused("address", parsed.error());
    }
    if (find_backend(*v, backend) != nullptr) {
      return Error{"backend " + backend + " exists", EEXIST};
    }
    v->backends.push_back(BackendSpec{
        .name = backend, .address = *parsed, .weight = pending.weight, .state = pending.state});
    return {};
  });
  if (added) {
    pending_.erase(it);
  }
  return added;
}

namespace {

// mkdir and rmdir act on backends alone, configfs-style: vips/<vip>/backends/<name>.
// Returns {vip, backend}, or nullopt for any other path.
std::optional<std::pair<std::string, std::string>> backend_path(std::string_view path) {
  const auto p = split(path);
  if (p.size() != 4 || p[0] != "vips" || p[2] != "backends") {
    return std::nullopt;
  }
  return std::pair{p[1], p[3]};
}

}  // namespace

Result<void> TreeState::make_backend(std::string_view path) {
  const auto names = backend_path(path);
  if (!names) {
    return Error{"only backends can be created: mkdir vips/<vip>/backends/<name>", EPERM};
  }
  const auto& [vip_name, backend] = *names;
  const auto config = runtime.config();  // held: `spec` points into it
  const VipSpec* spec = find_vip(config->vips, vip_name);
  const auto vip = runtime.find_vip(vip_name);
  if (vip == nullptr && (spec == nullptr || spec->mode != Mode::forward)) {
    return not_found(path);
  }
  if (!is_valid_name(backend)) {
    return invalid("name: " + name_error(backend));
  }
  if (vip ? vip->state().load()->pool->find(backend) != nullptr
          : find_backend(*spec, backend) != nullptr) {
    return Error{"backend " + backend + " exists", EEXIST};
  }
  std::lock_guard lock(pending_mu_);
  if (!pending_.emplace(*names, Pending{}).second) {
    return Error{"backend " + backend + " exists", EEXIST};
  }
  return {};
}

Result<void> TreeState::remove_backend(std::string_view path) {
  const auto names = backend_path(path);
  if (!names) {
    return Error{"only backends can be removed: rmdir vips/<vip>/backends/<name>", EPERM};
  }
  // Named copies, not structured bindings: the lambdas below capture them (clang 14,
  // the fuzz build's compiler, cannot capture bindings).
  const std::string& vip_name = names->first;
  const std::string& backend = names->second;
  {
    std::lock_guard lock(pending_mu_);
    if (pending_.erase(*names) != 0) {
      return {};
    }
  }
  // The checks that guard a removal run under the writer lock that applies it
  // (Runtime::edit): two rmdirs at once cannot both pass "not the last backend".
  // removing_ holds the backends an rmdir is draining; it is only touched in edits.
  auto remaining = [&](const VipSpec& spec) {
    size_t n = 0;
    for (const auto& b : spec.backends) {
      n += b.name != backend && removing_.count({vip_name, b.name}) == 0 ? 1 : 0;
    }
    return n;
  };
  Mode mode = Mode::proxy;
  auto started = runtime.edit([&](Config& config) -> Result<void> {
    VipSpec* spec = find_vip(config.vips, vip_name);
    BackendSpec* b = spec != nullptr ? find_backend(*spec, backend) : nullptr;
    if (b == nullptr || removing_.count(*names) != 0) {
      return not_found(path);
    }
    if (remaining(*spec) == 0) {
      return Error{"a vip keeps at least one backend: set its state to down instead", EBUSY};
    }
    mode = spec->mode;
    if (mode == Mode::forward) {
      // A forward backend goes at once: the XDP plane counts no connections to wait
      // for (set its state to drain first to let established flows finish).
      std::erase_if(spec->backends, [&](const BackendSpec& s) { return s.name == backend; });
      return {};
    }
    // Drain: no new connections, established ones finish, up to the drain timeout.
    b->state = AdminState::drain;
    removing_.insert(*names);
    return {};
  });
  if (!started || mode == Mode::forward) {
    return started;
  }
  drain(vip_name, backend);
  auto removed = runtime.edit([&](Config& config) -> Result<void> {
    removing_.erase(*names);
    VipSpec* spec = find_vip(config.vips, vip_name);
    if (spec == nullptr) {
      return Error{"no vip named " + vip_name, ENOENT};
    }
    std::erase_if(spec->backends, [&](const BackendSpec& s) { return s.name == backend; });
    return {};
  });
  if (!removed) {
    // Nothing was removed (the VIP went away meanwhile, or the XDP plane refused): the
    // backend no longer counts as being removed.
    (void)runtime.edit([&](Config&) -> Result<void> {
      removing_.erase(*names);
      return {};
    });
  }
  return removed;
}

void TreeState::drain(const std::string& vip_name, const std::string& backend) {
  auto vip = runtime.find_vip(vip_name);
  const Backend* b = vip ? vip->state().load()->pool->find(backend) : nullptr;
  const auto stats = b != nullptr ? b->stats : nullptr;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(runtime.config()->daemon.drain_timeout_ms);
  while (stats && stats->active.load(std::memory_order_relaxed) > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (stats && stats->active.load(std::memory_order_relaxed) > 0) {
    (void)runtime.shutdown_backend(vip_name, backend);
  }
}

}  // namespace ringlb::control
