// ringlb attach / detach / decap: the XDP loader commands (`which` is in which.cpp).
//
//   ringlb attach [DEV] -c FILE [--mode native|generic] [--pin-path P] [--force]
//       loads the data plane, pins its maps under P, fills them from FILE and attaches
//       it to DEV (default: [xdp] interface). Running it again with a changed FILE
//       updates the pinned maps in place (Maglev tables are swapped atomically, the flow
//       table is kept) and replaces the program.
//   ringlb detach DEV [--pin-path P] [--unpin]
//   ringlb decap attach DEV (--allow CIDR... | --allow-any) [--mode native|generic|tc]
//                       [--force]                                  (on backends)
//   ringlb decap detach DEV [--mode native|generic|tc]
//       the decap program on the XDP hook (native, generic) or on clsact ingress (tc).
//       detach removes only ringlb's decap program: without --mode, from both hooks.
//   ringlb decap stats DEV
//       what ringlb's decap program on DEV counted, per hook: one line per counter,
//       "decap.HOOK.VERDICT.packets N" and ".bytes N" (HOOK xdp or tc); exit 1 when DEV
//       has none.
#include <grp.h>
#include <pwd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::cli {
namespace {

Config load(const std::string& path) {
  return value_or_throw(load_config(path));
}

XdpAttach parse_mode(const std::string& mode) {
  return mode == "generic" ? XdpAttach::generic : XdpAttach::native;
}

struct AttachOptions {
  std::string interface;
  std::string config_path;
  std::string mode;  // empty: the config's [xdp] attach
  std::string pin_path = xdp::kDefaultPinRoot;
  bool force = false;  // replace another tool's XDP program
  std::string owner;   // user[:group] to give the pins to; empty: root's
};

// --owner USER[:GROUP] (GROUP: USER's primary group when not given).
std::pair<uid_t, gid_t> parse_owner(const std::string& owner) {
  const auto colon = owner.find(':');
  const std::string user = owner.substr(0, colon);
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) {
    throw std::runtime_error("--owner: no user " + user);
  }
  gid_t gid = pw->pw_gid;
  if (colon != std::string::npos) {
    const std::string name = owner.substr(colon + 1);
    const group* gr = ::getgrnam(name.c_str());
    if (gr == nullptr) {
      throw std::runtime_error("--owner: no group " + name);
    }
    gid = gr->gr_gid;
  }
  return {pw->pw_uid, gid};
}

int run_attach(const AttachOptions& options) {
  const Config config = load(options.config_path);
  const std::string interface =
      options.interface.empty() ? config.xdp.interface : options.interface;
  if (interface.empty()) {
    throw std::runtime_error("no interface: give DEV or set [xdp] interface in " +
                             options.config_path);
  }
  const XdpAttach mode = options.mode.empty() ? config.xdp.attach : parse_mode(options.mode);
  const int ifindex = value_or_throw(xdp::interface_index(interface));
  // Refused before any map changes: a foreign program stays, and so does the state.
  ok_or_throw(xdp::check_attachable(ifindex, xdp::kXdpProgramName, options.force));
  std::optional<std::pair<uid_t, gid_t>> owner;
  if (!options.owner.empty()) {
    owner = parse_owner(options.owner);
    ok_or_throw(xdp::check_pin_root_reachable(options.pin_path, owner->first, owner->second));
  }
  xdp::LoadOptions load_options = xdp::load_options(config);
  load_options.pin_root = options.pin_path;
  ok_or_throw(xdp::set_sources_from_interface(load_options, interface));
  auto program = value_or_throw(xdp::XdpProgram::load(load_options));
  ok_or_throw(program.apply(config));
  if (owner) {
    ok_or_throw(xdp::give_pins(options.pin_path, owner->first, owner->second));
  }
  ok_or_throw(program.attach(ifindex, mode, options.force));
  std::printf("attached ringlb to %s (%s), maps pinned under %s%s\n", interface.c_str(),
              mode == XdpAttach::native ? "native" : "generic", options.pin_path.c_str(),
              owner ? (" for " + options.owner).c_str() : "");
  return 0;
}

struct DetachOptions {
  std::string interface;
  std::string pin_path = xdp::kDefaultPinRoot;
  bool unpin = false;
};

int run_detach(const DetachOptions& options) {
  const int ifindex = value_or_throw(xdp::interface_index(options.interface));
  ok_or_throw(xdp::detach(ifindex));
  if (options.unpin) {
    // The maps the program pins (the skeleton's list), then the directory if now empty.
    ok_or_throw(xdp::unpin_maps(options.pin_path));
  }
  std::printf("detached XDP from %s\n", options.interface.c_str());
  return 0;
}

struct DecapOptions {
  std::string interface;
  bool force = false;  // attach: replace another tool's XDP program
  std::string mode;    // native | generic | tc; empty: attach native, detach from both hooks
  std::vector<std::string> allow;  // attach: outer sources decapsulated (CIDRs)
  bool allow_any = false;          // attach: from anyone
  xdp::DecapAllow parsed{};        // what allow / allow_any say, checked at parse time
};

// --allow / --allow-any of `decap attach`: one of them, each prefix valid. A usage error
// (exit 2) otherwise, before anything is loaded.
void check_allow(DecapOptions& options) {
  if (options.allow_any == !options.allow.empty()) {
    throw CLI::ValidationError("decap attach",
                               options.allow_any
                                   ? "--allow-any and --allow exclude each other"
                                   : "give --allow CIDR for each balancer's encapsulation source "
                                     "(repeatable), or --allow-any to decapsulate from anyone");
  }
  options.parsed.any = options.allow_any;
  for (const auto& text : options.allow) {
    auto prefix = xdp::parse_prefix(text);
    if (!prefix) {
      throw CLI::ValidationError("--allow", prefix.error().message);
    }
    options.parsed.prefixes.push_back(*prefix);
  }
}

int run_decap_attach(const DecapOptions& options) {
  const std::string mode = options.mode.empty() ? "native" : options.mode;
  const int ifindex = value_or_throw(xdp::interface_index(options.interface));
  auto program = value_or_throw(xdp::DecapProgram::load(options.parsed));
  if (mode == "tc") {
    ok_or_throw(program.attach_tc(ifindex));
    std::printf("attached ringlb decap to %s (tc, clsact ingress)\n", options.interface.c_str());
  } else {
    ok_or_throw(program.attach(ifindex, parse_mode(mode), options.force));
    std::printf("attached ringlb decap to %s (%s)\n", options.interface.c_str(), mode.c_str());
  }
  return 0;
}

int run_decap_detach(const DecapOptions& options) {
  const int ifindex = value_or_throw(xdp::interface_index(options.interface));
  const bool xdp_hook = options.mode != "tc";
  const bool tc_hook = options.mode.empty() || options.mode == "tc";
  bool detached = false;
  if (xdp_hook && value_or_throw(xdp::detach_decap_xdp(ifindex))) {
    std::printf("detached ringlb decap from %s (XDP)\n", options.interface.c_str());
    detached = true;
  }
  if (tc_hook && value_or_throw(xdp::detach_decap_tc(ifindex))) {
    std::printf("detached ringlb decap from %s (tc)\n", options.interface.c_str());
    detached = true;
  }
  if (!detached) {
    std::printf("no ringlb decap %son %s\n",
                options.mode.empty() ? "" : (xdp_hook ? "XDP program " : "tc filter "),
                options.interface.c_str());
  }
  return 0;
}

int run_decap_stats(const DecapOptions& options) {
  const int ifindex = value_or_throw(xdp::interface_index(options.interface));
  const auto hooks = value_or_throw(xdp::read_decap_stats(ifindex));
  if (hooks.empty()) {
    throw std::runtime_error("no ringlb decap program on " + options.interface +
                             " (neither on the XDP hook nor on clsact ingress)");
  }
  for (const auto& hook : hooks) {
    for (uint32_t v = 0; v < hook.verdicts.size(); ++v) {
      const std::string key = "decap." + hook.hook + "." + std::string(xdp::decap_verdict_name(v));
      std::printf("%s.packets %llu\n%s.bytes %llu\n", key.c_str(),
                  static_cast<unsigned long long>(hook.verdicts[v].packets), key.c_str(),
                  static_cast<unsigned long long>(hook.verdicts[v].bytes));
    }
  }
  return 0;
}

}  // namespace

void add_xdp_commands(CLI::App& app, CommandRunner& run) {
  {
    auto options = std::make_shared<AttachOptions>();
    CLI::App* cmd = app.add_subcommand(
        "attach", "Load the XDP data plane, pin and fill its maps, attach it (or update it)");
    cmd->add_option("interface", options->interface, "Interface (default: [xdp] interface)");
    cmd->add_option("-c,--config", options->config_path, "Config file (TOML)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("-m,--mode", options->mode, "native or generic (default: [xdp] attach)")
        ->check(CLI::IsMember({"native", "generic"}));
    cmd->add_option("--pin-path", options->pin_path, "bpffs directory for the pinned maps")
        ->capture_default_str();
    cmd->add_flag("--force", options->force,
                  "Replace an XDP program of another tool (ringlb's own is always replaced)");
    cmd->add_option("--owner", options->owner,
                    "USER[:GROUP] to give the pinned maps to, so that ringlbd running as "
                    "that user (the packaged unit's ringlb) can update them");
    cmd->callback([&run, options] { run = [options] { return run_attach(*options); }; });
  }
  {
    auto options = std::make_shared<DetachOptions>();
    CLI::App* cmd = app.add_subcommand("detach", "Detach the XDP program from an interface");
    cmd->add_option("interface", options->interface, "Interface")->required();
    cmd->add_option("--pin-path", options->pin_path, "bpffs directory of the pinned maps")
        ->capture_default_str();
    cmd->add_flag("--unpin", options->unpin, "Also remove the pinned maps");
    cmd->callback([&run, options] { run = [options] { return run_detach(*options); }; });
  }
  {
    CLI::App* decap = app.add_subcommand("decap", "IPIP/IP6IP6 decapsulation on backends");
    decap->require_subcommand(1);
    auto attach_options = std::make_shared<DecapOptions>();
    CLI::App* attach = decap->add_subcommand("attach", "Attach the decap program to an interface");
    attach->add_option("interface", attach_options->interface, "Interface")->required();
    attach
        ->add_option("-m,--mode", attach_options->mode,
                     "native (XDP in the driver, default), generic (XDP on the skb, any device) "
                     "or tc (clsact ingress: devices without native XDP, or whose XDP hook "
                     "another program owns)")
        ->check(CLI::IsMember({"native", "generic", "tc"}));
    attach->add_flag("--force", attach_options->force,
                     "Replace an XDP program of another tool (ringlb's own is always replaced)");
    attach->add_option("--allow", attach_options->allow,
                       "Decapsulate only tunnel packets whose outer source is in this prefix "
                       "(the balancers' addresses; repeatable); others are dropped");
    attach->add_flag("--allow-any", attach_options->allow_any,
                     "Decapsulate tunnel packets from any source");
    attach->callback([&run, attach_options] {
      check_allow(*attach_options);
      run = [attach_options] { return run_decap_attach(*attach_options); };
    });
    auto detach_options = std::make_shared<DecapOptions>();
    CLI::App* detach = decap->add_subcommand(
        "detach", "Detach ringlb's decap program (other programs are left attached)");
    detach->add_option("interface", detach_options->interface, "Interface")->required();
    detach
        ->add_option("-m,--mode", detach_options->mode,
                     "native or generic (the XDP hook) or tc (clsact ingress); default: both")
        ->check(CLI::IsMember({"native", "generic", "tc"}));
    detach->callback([&run, detach_options] {
      run = [detach_options] { return run_decap_detach(*detach_options); };
    });
    auto stats_options = std::make_shared<DecapOptions>();
    CLI::App* stats = decap->add_subcommand(
        "stats", "Counters of ringlb's decap program on an interface (decapsulated, dropped)");
    stats->add_option("interface", stats_options->interface, "Interface")->required();
    stats->callback([&run, stats_options] {
      run = [stats_options] { return run_decap_stats(*stats_options); };
    });
  }
}

}  // namespace ringlb::cli
