// ringlb: the operator CLI and XDP loader.
//
// Exit codes: 0 success; 1 the operation failed (the message says why); 2 bad usage
// (unknown command, bad option or argument).
#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"ringlb: operator CLI and XDP loader for the ringlb load balancer"};
  app.require_subcommand(1);
  ringlb::cli::CommandRunner run;
  ringlb::cli::add_simulate_command(app, run);
  ringlb::cli::add_xdp_commands(app, run);
  ringlb::cli::add_stats_command(app, run);
  ringlb::cli::add_top_command(app, run);
  ringlb::cli::add_status_command(app, run);
  ringlb::cli::add_which_command(app, run);
  ringlb::cli::add_xdp_edit_commands(app, run);
  ringlb::cli::add_seed_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ringlb: %s\n", e.what());
    return 1;
  }
}
