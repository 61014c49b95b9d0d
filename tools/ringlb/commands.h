// The ringlb CLI's subcommands. Each registers itself on the CLI11 app with its own
// options struct and declared defaults (the form of xdp-loader's command table).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace ringlb::cli {

// Adds a subcommand to `app`; `run` is set to the function that executes it and
// returns the process exit code.
using CommandRunner = std::function<int()>;
void add_simulate_command(CLI::App& app, CommandRunner& run);
// attach, detach, decap attach|detach (xdp_commands.cpp).
void add_xdp_commands(CLI::App& app, CommandRunner& run);
// stats (stats.cpp), top (top.cpp), status (status.cpp).
void add_stats_command(CLI::App& app, CommandRunner& run);
void add_top_command(CLI::App& app, CommandRunner& run);
void add_status_command(CLI::App& app, CommandRunner& run);
// which, for forward and proxy VIPs (which.cpp).
void add_which_command(CLI::App& app, CommandRunner& run);

}  // namespace ringlb::cli
