// The backend processes of a run: Proc, one chaos_backend or nginx that the test starts,
// kills, stops and restarts, and the model of it; plus the ports they listen on and what
// /proc says about a pending signal.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cstdint>
#include <set>
#include <string>

namespace ringlb::test::chaos {

// A port below the kernel's ephemeral range (32768..60999 here) that binds now: a port
// a backend gives up while it is dead must not be taken as a connection's local port.
uint16_t pick_port(std::set<uint16_t>& taken);

// Whether signal `sig` is still pending for process `pid` (not yet taken by its
// signalfd): /proc/<pid>/status, ShdPnd.
bool signal_pending(pid_t pid, int sig);

// One backend process: a chaos_backend or an nginx. The object is the test's model of it
// too (running, stopped); the destructor kills and reaps it.
struct Proc {
  std::string name;
  bool nginx = false;
  uint16_t port = 0;
  std::string dir;
  pid_t pid = -1;
  bool stopped = false;
  bool dying = false;      // about to be killed (already not good)
  int64_t settled_us = 0;  // good (health runs) from this time on
  int starts = 0;

  Proc() = default;
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() { hard_kill(); }

  bool running() const { return pid > 0; }
  bool good(int64_t now_us) const {
    return running() && !stopped && !dying && now_us >= settled_us;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  void hard_kill() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
    stopped = false;
    dying = false;
  }

  // Starts the process on its port; "" once it listens, else why not.
  std::string start();
};

}  // namespace ringlb::test::chaos
