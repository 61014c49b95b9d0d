// ringlb which: where a client address lands, predicted from the config with the same
// code the data planes run.
//
//   ringlb which CLIENT_IP [--vip NAME] [-c FILE] [--workers N]
//
// One line per VIP of the client's address family:
//   forward VIPs:  <vip> <backend> <backend address>
//       the Maglev table the XDP program holds (build_forward_table, forward_backend);
//   proxy VIPs:    <vip> <backend|-> <backend address|-> worker <n|-> [(note)]
//       backend: for ip_hash, the pick of the daemon's Pool and Policy code; for other
//       policies "-" (the backend is not a function of the client address);
//       worker: with [xdp] steer on, client_slot(hash, workers), the worker the XDP program
//       and the sk_reuseport program steer the client to; otherwise "-" (the kernel's
//       SO_REUSEPORT hash of the 4-tuple picks the worker).
// A VIP with no eligible backend prints "-" for the backend.
//
//   ringlb which CLIENT_IP [--vip NAME] --pin-path P
//       forward VIPs only, from the maps pinned under P instead of a config: the slot the
//       XDP program computes, looked up in the Maglev table it reads, named by the state
//       maps (what `ringlb xdp` edits). Same line format.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "ringlb/config/config.h"
#include "ringlb/model/client_hash.h"
#include "ringlb/model/pool.h"
#include "ringlb/policy/policy.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::cli {
namespace {

struct WhichOptions {
  std::string config_path = "/etc/ringlb/ringlb.toml";
  std::string client;
  std::string vip;
  uint32_t workers = 0;  // 0: the config's, as ringlbd counts them
  std::string pin_path;  // non-empty: read forward VIPs from the pinned maps
};

void which_forward(const Config& config, const VipSpec& vip, const IpAddress& client) {
  const auto table = xdp::build_forward_table(vip, config.daemon.maglev_table_size);
  const auto index = xdp::forward_backend(vip, table, config.daemon.hash_key, client);
  if (index) {
    const auto& backend = vip.backends[*index];
    std::printf("%s %s %s\n", vip.name.c_str(), backend.name.c_str(),
                backend.address.ip.to_string().c_str());
  } else {
    std::printf("%s - - (no eligible backend)\n", vip.name.c_str());
  }
}

void which_proxy(const Config& config, const VipSpec& vip, const IpAddress& client,
                 uint32_t workers) {
  std::string worker = "-";
  std::string note;
  if (config.xdp.enabled && config.xdp.steer) {
    worker = std::to_string(client_slot(config.daemon.hash_key, client, workers));
  } else {
    note = "not steered: the kernel's SO_REUSEPORT hash of the 4-tuple picks the worker";
  }
  std::string backend = "-";
  std::string address = "-";
  if (vip.policy == PolicyKind::ip_hash) {
    // The pool the daemon builds for this VIP, and its ip_hash pick for a first attempt.
    const auto plan =
        PolicyPlan::make(Pool::of_spec(vip, pool_options(config)), PolicyKind::ip_hash);
    const Backend* picked = make_policy(plan, 0)->pick(Client{.address = client}, TriedBackends{});
    if (picked != nullptr) {
      backend = picked->spec.name;
      address = picked->spec.address.to_string();
    } else {
      note = "no eligible backend" + (note.empty() ? "" : "; " + note);
    }
  } else {
    const std::string policy(to_string(vip.policy));
    note = "policy " + policy + ": the backend is not a function of the client address" +
           (note.empty() ? "" : "; " + note);
  }
  std::printf("%s %s %s worker %s%s\n", vip.name.c_str(), backend.c_str(), address.c_str(),
              worker.c_str(), note.empty() ? "" : ("  (" + note + ")").c_str());
}

int run_which(const WhichOptions& options) {
  const auto client = IpAddress::parse(options.client);
  if (!client) {
    std::fprintf(stderr, "ringlb which: not an IP address: %s\n", options.client.c_str());
    return 2;
  }
  if (!options.pin_path.empty()) {
    return which_pinned(options.pin_path, *client, options.vip);
  }
  auto config = load_config(options.config_path);
  if (!config) {
    throw std::runtime_error(config.error().message);
  }
  uint32_t workers = options.workers != 0 ? options.workers : config->daemon.workers;
  if (workers == 0) {
    workers = std::max(1u, std::thread::hardware_concurrency());
  }
  bool any = false;
  bool named = options.vip.empty();
  for (const auto& vip : config->vips) {
    if (!options.vip.empty() && vip.name != options.vip) {
      continue;
    }
    named = true;
    if (vip.listen.ip.is_v4() != client->is_v4()) {
      continue;
    }
    any = true;
    if (vip.mode == Mode::forward) {
      which_forward(*config, vip, *client);
    } else {
      which_proxy(*config, vip, *client, workers);
    }
  }
  if (!named) {
    throw std::runtime_error("no VIP named " + options.vip + " in " + options.config_path);
  }
  if (!any) {
    throw std::runtime_error("no VIP of the client's address family" +
                             (options.vip.empty() ? std::string() : " named " + options.vip) +
                             " in " + options.config_path);
  }
  return 0;
}

}  // namespace

int which_pinned(const std::string& pin_path, const IpAddress& client, const std::string& only) {
  const auto maps = value_or_throw(xdp::PinnedMaps::open(pin_path));
  const auto lock = value_or_throw(xdp::StateLock::take(pin_path, false));
  const auto view = value_or_throw(xdp::PinnedForwardView::read(maps.fds()));
  bool named = only.empty();
  bool any = false;
  for (const auto& vip : view.state().vips) {
    if (!only.empty() && vip.name != only) {
      continue;
    }
    named = true;
    if (vip.mode != Mode::forward || vip.listen.ip.is_v4() != client.is_v4()) {
      continue;
    }
    any = true;
    // The slot the program computes, looked up in the table it reads.
    const auto backend_id = value_or_throw(view.backend_id(vip, client));
    if (!backend_id) {
      std::printf("%s - - (no eligible backend)\n", vip.name.c_str());
      continue;
    }
    const BackendSpec* b = view.member(vip, *backend_id);
    if (b == nullptr) {
      throw std::runtime_error("vip " + vip.name + ": the table names backend id " +
                               std::to_string(*backend_id) + ", which no backend of it has");
    }
    std::printf("%s %s %s\n", vip.name.c_str(), b->name.c_str(), b->address.ip.to_string().c_str());
  }
  if (!named) {
    throw std::runtime_error("no vip named " + only + " in the maps under " + pin_path);
  }
  if (!any) {
    throw std::runtime_error("no forward VIP of the client's address family" +
                             (only.empty() ? std::string() : " named " + only) +
                             " in the maps under " + pin_path);
  }
  return 0;
}

void add_which_command(CLI::App& app, CommandRunner& run) {
  auto options = std::make_shared<WhichOptions>();
  CLI::App* cmd = app.add_subcommand(
      "which", "Which backend (and worker) each VIP gives a client address, from the config");
  cmd->add_option("client", options->client, "Client IP address")->required();
  cmd->add_option("-c,--config", options->config_path, "Config file (TOML)")->capture_default_str();
  cmd->add_option("--vip", options->vip, "Only this VIP");
  cmd->add_option("--pin-path", options->pin_path,
                  "Forward VIPs from the maps pinned here (what ringlb xdp edits), not a config");
  cmd->add_option("--workers", options->workers,
                  "Worker count, if ringlbd runs with --workers (default: [daemon] workers)")
      ->check(CLI::Range(1u, 4096u));
  cmd->callback([&run, options] { run = [options] { return run_which(*options); }; });
}

}  // namespace ringlb::cli
