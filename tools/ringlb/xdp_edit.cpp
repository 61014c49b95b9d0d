// ringlb xdp ...: forward-mode VIPs and backends edited in the pinned maps, without the
// config file and without the daemon (the maps are the state; include/ringlb/xdp/xdp.h).
//
//   ringlb xdp list                                          [--pin-path P]
//   ringlb xdp vip add NAME --listen ADDR:PORT [--proto tcp|udp]
//   ringlb xdp vip remove NAME
//   ringlb xdp backend add VIP NAME ADDR [--weight W] [--state up|drain|down]
//   ringlb xdp backend remove VIP NAME
//   ringlb xdp backend set VIP NAME [--weight W] [--state up|drain|down]
//
// Each edit takes the pin directory's lock, reads the state back from the maps, changes
// it, validates it with the config's rules and messages, and writes it with apply_state():
// the same code `ringlb attach -c` and ringlbd use, so each changed Maglev table is built
// by build_forward_table and swapped in with one map update. A bad edit exits 1 with the
// reason and writes nothing.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "commands.h"
#include "ringlb/model/fields.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::cli {
namespace {

struct EditOptions {
  std::string pin_path = xdp::kDefaultPinRoot;
  std::string vip;
  std::string backend;
  std::string listen;
  std::string protocol = "tcp";
  std::string address;
  std::string weight;  // empty: unchanged (set) or 1 (add)
  std::string state;   // empty: unchanged (set) or up (add)
};

VipSpec& forward_vip(xdp::XdpState& state, const std::string& name) {
  VipSpec* vip = find_vip(state.vips, name);
  if (vip == nullptr) {
    throw std::runtime_error("no vip named " + name);
  }
  if (vip->mode != Mode::forward) {
    throw std::runtime_error("vip " + name +
                             " is a proxy VIP (steered to ringlbd's workers): edit it in "
                             "ringlbd's config or control filesystem");
  }
  return *vip;
}

BackendSpec& backend_of(VipSpec& vip, const std::string& name) {
  BackendSpec* backend = find_backend(vip, name);
  if (backend == nullptr) {
    throw std::runtime_error("vip " + vip.name + " has no backend named " + name);
  }
  return *backend;
}

// The model's rules and messages (fields.h) for the values a command line gives.
uint32_t parse_weight(const std::string& text, const std::string& path) {
  return value_or_throw(parse_uint(text, kBackendWeight.range), path + ".weight: ");
}

AdminState parse_state(const std::string& text, const std::string& path) {
  return value_or_throw(parse_choice(text, parse_admin_state, kAdminStateWords), path + ".state: ");
}

// Read, change, validate, write: under the pin directory's lock, so that a concurrent
// edit (another CLI, ringlbd) is never lost.
void edit(const std::string& pin_path, const std::function<void(xdp::XdpState&)>& change) {
  const auto maps = value_or_throw(xdp::PinnedMaps::open(pin_path));
  const auto lock = value_or_throw(xdp::StateLock::take(pin_path, true));
  auto state = value_or_throw(xdp::read_state(maps.fds()));
  change(state);
  ok_or_throw(xdp::apply_state(maps.fds(), state));
}

int run_vip_add(const EditOptions& o) {
  const std::string path = "vip[" + o.vip + "]";
  const auto listen = value_or_throw(parse_listen(o.listen), path + ".listen: ");
  const auto protocol = value_or_throw(parse_choice(o.protocol, parse_protocol, kProtocolWords),
                                       path + ".protocol: ");
  edit(o.pin_path, [&](xdp::XdpState& state) {
    VipSpec vip;
    vip.name = o.vip;
    vip.listen = listen;
    vip.protocol = protocol;
    vip.mode = Mode::forward;
    vip.policy = PolicyKind::ip_hash;
    state.vips.push_back(std::move(vip));
  });
  std::printf("added vip %s %s/%s (no backends yet: new flows are dropped)\n", o.vip.c_str(),
              listen.to_string().c_str(), o.protocol.c_str());
  return 0;
}

int run_vip_remove(const EditOptions& o) {
  edit(o.pin_path, [&](xdp::XdpState& state) {
    const VipSpec& vip = forward_vip(state, o.vip);
    std::erase_if(state.vips, [&](const VipSpec& v) { return &v == &vip; });
  });
  std::printf("removed vip %s\n", o.vip.c_str());
  return 0;
}

int run_backend_add(const EditOptions& o) {
  const std::string path = "vip[" + o.vip + "].backend[" + o.backend + "]";
  const auto address =
      value_or_throw(parse_backend_address(o.address, Mode::forward), path + ".address: ");
  BackendSpec backend{.name = o.backend,
                      .address = address,
                      .weight = o.weight.empty() ? 1 : parse_weight(o.weight, path),
                      .state = o.state.empty() ? AdminState::up : parse_state(o.state, path)};
  edit(o.pin_path,
       [&](xdp::XdpState& state) { forward_vip(state, o.vip).backends.push_back(backend); });
  std::printf("added backend %s %s to vip %s (weight %u, %s)\n", o.backend.c_str(),
              address.ip.to_string().c_str(), o.vip.c_str(), backend.weight,
              std::string(to_string(backend.state)).c_str());
  return 0;
}

int run_backend_remove(const EditOptions& o) {
  edit(o.pin_path, [&](xdp::XdpState& state) {
    VipSpec& vip = forward_vip(state, o.vip);
    const BackendSpec& backend = backend_of(vip, o.backend);
    std::erase_if(vip.backends, [&](const BackendSpec& b) { return &b == &backend; });
  });
  std::printf("removed backend %s from vip %s\n", o.backend.c_str(), o.vip.c_str());
  return 0;
}

int run_backend_set(const EditOptions& o) {
  const std::string path = "vip[" + o.vip + "].backend[" + o.backend + "]";
  if (o.weight.empty() && o.state.empty()) {
    throw std::runtime_error("nothing to set: give --weight W and/or --state up|drain|down");
  }
  const std::optional<uint32_t> weight =
      o.weight.empty() ? std::nullopt : std::optional(parse_weight(o.weight, path));
  const std::optional<AdminState> admin =
      o.state.empty() ? std::nullopt : std::optional(parse_state(o.state, path));
  edit(o.pin_path, [&](xdp::XdpState& state) {
    BackendSpec& backend = backend_of(forward_vip(state, o.vip), o.backend);
    backend.weight = weight.value_or(backend.weight);
    backend.state = admin.value_or(backend.state);
  });
  std::printf("set backend %s of vip %s\n", o.backend.c_str(), o.vip.c_str());
  return 0;
}

int run_list(const EditOptions& o) {
  const auto maps = value_or_throw(xdp::PinnedMaps::open(o.pin_path));
  const auto lock = value_or_throw(xdp::StateLock::take(o.pin_path, false));
  const auto view = value_or_throw(xdp::PinnedForwardView::read(maps.fds()));
  std::printf("maglev_table_size %u\n", view.state().maglev_table_size);
  for (const auto& vip : view.state().vips) {
    const bool forward = vip.mode == Mode::forward;
    std::printf("vip %s %s %s %s\n", vip.name.c_str(), vip.listen.to_string().c_str(),
                std::string(to_string(vip.protocol)).c_str(), forward ? "forward" : "steer");
    if (!forward) {
      continue;
    }
    // Slots per backend, counted in the table the program reads (not a prediction).
    auto slots = value_or_throw(view.slots(vip));
    for (const auto& b : vip.backends) {
      std::printf("  backend %s %s weight %u %s slots %u\n", b.name.c_str(),
                  b.address.ip.to_string().c_str(), b.weight,
                  std::string(to_string(b.state)).c_str(), slots[b.name]);
    }
  }
  return 0;
}

}  // namespace

void add_xdp_edit_commands(CLI::App& app, CommandRunner& run) {
  CLI::App* xdp = app.add_subcommand(
      "xdp", "Edit forward-mode VIPs and backends in the pinned maps (no config, no daemon)");
  xdp->require_subcommand(1);
  auto options = std::make_shared<EditOptions>();
  auto pin_path = [options](CLI::App* cmd) {
    cmd->add_option("--pin-path", options->pin_path, "bpffs directory of the pinned maps")
        ->capture_default_str();
  };
  auto runner = [&run, options](int (*command)(const EditOptions&)) {
    return [&run, options, command] { run = [options, command] { return command(*options); }; };
  };
  {
    CLI::App* cmd = xdp->add_subcommand("list", "VIPs and backends as the maps hold them");
    pin_path(cmd);
    cmd->callback(runner(run_list));
  }
  {
    CLI::App* vip = xdp->add_subcommand("vip", "Add or remove a forward-mode VIP");
    vip->require_subcommand(1);
    CLI::App* add = vip->add_subcommand("add", "Add a forward-mode VIP (no backends yet)");
    add->add_option("name", options->vip, "VIP name")->required();
    add->add_option("--listen", options->listen, "ADDR:PORT")->required();
    add->add_option("--proto", options->protocol, "tcp or udp")->capture_default_str();
    pin_path(add);
    add->callback(runner(run_vip_add));
    CLI::App* remove = vip->add_subcommand("remove", "Remove a VIP (its flows end)");
    remove->add_option("name", options->vip, "VIP name")->required();
    pin_path(remove);
    remove->callback(runner(run_vip_remove));
  }
  {
    CLI::App* backend = xdp->add_subcommand("backend", "Add, remove or change a VIP's backend");
    backend->require_subcommand(1);
    CLI::App* add = backend->add_subcommand("add", "Add a backend to a forward-mode VIP");
    add->add_option("vip", options->vip, "VIP name")->required();
    add->add_option("name", options->backend, "Backend name")->required();
    add->add_option("address", options->address, "Backend IP address (no port)")->required();
    add->add_option("--weight", options->weight, "0..10000 (default 1)");
    add->add_option("--state", options->state, "up, drain or down (default up)");
    pin_path(add);
    add->callback(runner(run_backend_add));
    CLI::App* remove = backend->add_subcommand("remove", "Remove a backend from a VIP");
    remove->add_option("vip", options->vip, "VIP name")->required();
    remove->add_option("name", options->backend, "Backend name")->required();
    pin_path(remove);
    remove->callback(runner(run_backend_remove));
    CLI::App* set = backend->add_subcommand("set", "Change a backend's weight and/or state");
    set->add_option("vip", options->vip, "VIP name")->required();
    set->add_option("name", options->backend, "Backend name")->required();
    set->add_option("--weight", options->weight, "0..10000");
    set->add_option("--state", options->state, "up, drain or down");
    pin_path(set);
    set->callback(runner(run_backend_set));
  }
}

}  // namespace ringlb::cli
