// ringlb simulate: which backend each of N synthetic clients gets, per policy, and the
// resulting shares. Uses the same Pool and Policy code as the daemon.
#include <arpa/inet.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "ringlb/config/config.h"
#include "ringlb/policy/policy.h"
#include "ringlb/random.h"

namespace ringlb::cli {
namespace {

struct SimulateOptions {
  std::string config_path;
  uint32_t clients = 10000;
  std::string policy = "all";
  std::string vip;
  uint64_t seed = 1;
  bool list = false;
};

Client synthetic_client(Rng& rng) {
  // Addresses in 10.0.0.0/8 (RFC 1918) so a listing never names a real host.
  in_addr a;
  const uint32_t host = 0x0a000000u | (static_cast<uint32_t>(rng.next()) & 0x00ffffffu);
  a.s_addr = htonl(host);
  return Client{.address = IpAddress::v4(a),
                .port = static_cast<uint16_t>(1024 + rng.below(64512))};
}

// Share a policy is meant to give each backend: equal for round_robin, by weight for
// the rest; 0 for backends that are not eligible.
double expected_share(const Pool& pool, PolicyKind policy, uint32_t index) {
  const auto& backend = pool.backends()[index];
  if (!backend.eligible()) {
    return 0;
  }
  if (policy == PolicyKind::round_robin) {
    return 1.0 / pool.eligible().size();
  }
  double total = 0;
  for (uint32_t i : pool.eligible()) {
    total += pool.backends()[i].spec.weight;
  }
  return backend.spec.weight / total;
}

void simulate_vip(const Config& config, const VipSpec& vip, PolicyKind policy,
                  const SimulateOptions& options) {
  const auto plan = PolicyPlan::make(Pool::of_spec(vip, pool_options(config)), policy);
  const Pool& pool = plan->pool();
  auto picker = make_policy(plan, options.seed);
  Rng rng(options.seed);
  std::map<uint32_t, uint64_t> counts;
  uint64_t unserved = 0;
  std::printf("vip %s (%s, %s), policy %s, %u clients\n", vip.name.c_str(),
              vip.listen.to_string().c_str(), std::string(to_string(vip.mode)).c_str(),
              std::string(to_string(policy)).c_str(), options.clients);
  for (uint32_t i = 0; i < options.clients; ++i) {
    const Client client = synthetic_client(rng);
    const Backend* backend = picker->pick(client, TriedBackends{});
    if (backend == nullptr) {
      ++unserved;
      if (options.list) {
        std::printf("  %-21s -> (no eligible backend)\n",
                    SocketAddress{client.address, client.port}.to_string().c_str());
      }
      continue;
    }
    // Each synthetic client keeps its connection open, which is what least_request
    // balances on.
    backend->stats->active.fetch_add(1, std::memory_order_relaxed);
    const auto index = static_cast<uint32_t>(backend - pool.backends().data());
    ++counts[index];
    if (options.list) {
      std::printf("  %-21s -> %s\n", SocketAddress{client.address, client.port}.to_string().c_str(),
                  backend->spec.name.c_str());
    }
  }
  std::printf("  %-16s %-22s %6s %-6s %8s %8s %8s\n", "backend", "address", "weight", "state",
              "clients", "share", "expected");
  for (uint32_t i = 0; i < pool.backends().size(); ++i) {
    const auto& b = pool.backends()[i];
    const double share = options.clients ? 100.0 * counts[i] / options.clients : 0;
    std::printf("  %-16s %-22s %6u %-6s %8" PRIu64 " %7.2f%% %7.2f%%\n", b.spec.name.c_str(),
                b.spec.address.to_string().c_str(), b.spec.weight,
                std::string(to_string(b.spec.state)).c_str(), counts[i], share,
                100.0 * expected_share(pool, policy, i));
  }
  if (unserved != 0) {
    std::printf("  %" PRIu64 " clients had no eligible backend\n", unserved);
  }
  std::printf("\n");
}

int run_simulate(const SimulateOptions& options) {
  auto config = load_config(options.config_path);
  if (!config) {
    std::fprintf(stderr, "ringlb simulate: %s\n", config.error().message.c_str());
    return 1;
  }
  std::vector<PolicyKind> policies;
  if (options.policy != "all") {
    auto parsed = parse_policy(options.policy);
    if (!parsed) {
      std::fprintf(stderr,
                   "ringlb simulate: unknown policy \"%s\" (expected all, round_robin, weighted, "
                   "least_request, random, ip_hash)\n",
                   options.policy.c_str());
      return 2;
    }
    policies.push_back(*parsed);
  }
  bool found = options.vip.empty();
  for (const auto& vip : config->vips) {
    if (!options.vip.empty() && vip.name != options.vip) {
      continue;
    }
    found = true;
    if (!policies.empty()) {
      simulate_vip(*config, vip, policies.front(), options);
      continue;
    }
    if (vip.mode == Mode::forward) {
      simulate_vip(*config, vip, PolicyKind::ip_hash, options);
      continue;
    }
    for (auto policy : {PolicyKind::round_robin, PolicyKind::weighted, PolicyKind::least_request,
                        PolicyKind::random, PolicyKind::ip_hash}) {
      simulate_vip(*config, vip, policy, options);
    }
  }
  if (!found) {
    std::fprintf(stderr, "ringlb simulate: no vip named \"%s\" in %s\n", options.vip.c_str(),
                 options.config_path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void add_simulate_command(CLI::App& app, CommandRunner& run) {
  auto options = std::make_shared<SimulateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Show which backend synthetic clients get under each policy, and the shares");
  cmd->add_option("-c,--config", options->config_path, "Config file (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-n,--clients", options->clients, "Number of synthetic clients")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u));
  cmd->add_option("-p,--policy", options->policy,
                  "Policy to simulate: all, round_robin, weighted, least_request, random, ip_hash")
      ->capture_default_str();
  cmd->add_option("--vip", options->vip, "Only this VIP");
  cmd->add_option("--seed", options->seed, "Seed for client addresses and random choices")
      ->capture_default_str();
  cmd->add_flag("-l,--list", options->list, "Print every client and its backend");
  cmd->callback([&run, options] { run = [options] { return run_simulate(*options); }; });
}

}  // namespace ringlb::cli
