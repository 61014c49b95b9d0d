// ringlb seed: prints a new random hash_seed (32 hexadecimal digits from getrandom(2)),
// for [daemon] hash_seed. Keep the file that holds it private (mode 0600): ringlbd
// refuses a config whose seed others can read.
#include <cstdio>

#include "commands.h"
#include "ringlb/config/config.h"

namespace ringlb::cli {

void add_seed_command(CLI::App& app, CommandRunner& run) {
  CLI::App* cmd = app.add_subcommand(
      "seed", "Print a new random hash_seed for [daemon] hash_seed (keep the file 0600)");
  cmd->callback([&run] {
    run = [] {
      const std::string seed = value_or_throw(random_hash_seed(), "seed: ");
      std::printf("%s\n", seed.c_str());
      return 0;
    };
  });
}

}  // namespace ringlb::cli
