// The ringlb CLI's subcommands. Each registers itself on the CLI11 app with its own
// options struct and declared defaults (the form of xdp-loader's command table).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <stdexcept>
#include <string>

#include "ringlb/model/address.h"
#include "ringlb/result.h"

namespace ringlb::cli {

// A command's failure: main() prints the message (after `prefix`) and exits 1.
template <class T>
T value_or_throw(Result<T> result, const std::string& prefix = "") {
  if (!result) {
    throw std::runtime_error(prefix + result.error().message);
  }
  return std::move(result.value());
}

inline void ok_or_throw(const Result<void>& result) {
  if (!result) {
    throw std::runtime_error(result.error().message);
  }
}

// Adds a subcommand to `app`; `run` is set to the function that executes it and
// returns the process exit code.
using CommandRunner = std::function<int()>;
void add_simulate_command(CLI::App& app, CommandRunner& run);
// seed: a new random hash_seed (seed.cpp).
void add_seed_command(CLI::App& app, CommandRunner& run);
// attach, detach, decap attach|detach|stats (xdp_commands.cpp).
void add_xdp_commands(CLI::App& app, CommandRunner& run);
// stats (stats.cpp), top (top.cpp), status (status.cpp).
void add_stats_command(CLI::App& app, CommandRunner& run);
void add_top_command(CLI::App& app, CommandRunner& run);
void add_status_command(CLI::App& app, CommandRunner& run);
// which, for forward and proxy VIPs (which.cpp).
void add_which_command(CLI::App& app, CommandRunner& run);
// xdp list | vip add|remove | backend add|remove|set: edits of the pinned maps
// (xdp_edit.cpp).
void add_xdp_edit_commands(CLI::App& app, CommandRunner& run);
// `ringlb which --pin-path`: the backend of each forward VIP (or only `vip`) for `client`,
// read from the table the program uses under `pin_path`. Returns the exit code.
int which_pinned(const std::string& pin_path, const IpAddress& client, const std::string& vip);

}  // namespace ringlb::cli
