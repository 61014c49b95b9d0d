// Hand-over in the manner of HAProxy's -sf: `ringlbd --handover` takes the listening
// sockets of the ringlbd serving the same control_dir, serves on them, and then the old
// one stops accepting, gives up its control mount, its lock and its metrics port, and
// drains its connections. Not one connection is refused or reset on the way: the
// listening sockets stay open throughout (both processes hold them), and a client queued
// in one is accepted by whichever process accepts next.
//
// The rendezvous is an abstract AF_UNIX SOCK_SEQPACKET socket named after control_dir
// (handover_socket_name). The old daemon answers only a peer of its own uid or root; the
// new one only trusts the process the control_dir names (its `pid` file, or the lock
// file when no tree is mounted), so a squatter on the name gets nowhere either way.
//
//   new -> old  "hello 1"
//   old -> new  "listeners <pid> <workers> <count>", then <count> messages "<address>",
//               each with one listening socket (SCM_RIGHTS), worker order per address
//   new -> old  "taken"         (its workers accept on them now)
//   old -> new  "released"      (it accepts nothing more; mount, lock, port are free)
//   old -> new  "error <text>"  instead of "listeners", e.g. when a hand-over runs already
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringlb/fd.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"

namespace ringlb::daemon {

// The abstract socket name (without the leading NUL) for `control_dir`.
std::string handover_socket_name(const std::string& control_dir);

// The old side: answers one hand-over, on a thread of its own.
class HandoverServer {
 public:
  // Serves hand-over requests for `control_dir` from `runtime`'s listeners. Once a
  // successor says "taken", `on_taken(pid)` runs on the server's thread: the daemon's
  // main thread must then step down and call released().
  static Result<std::unique_ptr<HandoverServer>> start(const std::string& control_dir,
                                                       const Runtime& runtime,
                                                       std::function<void(pid_t)> on_taken);
  ~HandoverServer();
  HandoverServer(const HandoverServer&) = delete;
  HandoverServer& operator=(const HandoverServer&) = delete;

  // The main thread has stepped down: the successor hears "released".
  void released();

 private:
  HandoverServer() = default;
  void serve();
  void answer(int conn);

  const Runtime* runtime_ = nullptr;
  std::function<void(pid_t)> on_taken_;
  UniqueFd listener_;
  UniqueFd stop_;  // eventfd: the destructor wakes the thread
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::thread thread_;
};

// The new side.
class Handover {
 public:
  // Asks the ringlbd serving `control_dir` for its listeners.
  static Result<Handover> request(const std::string& control_dir);

  pid_t predecessor() const { return predecessor_; }
  uint32_t workers() const { return workers_; }
  size_t listener_addresses() const { return listeners_.size(); }
  std::vector<InheritedListeners> take_listeners() { return std::move(listeners_); }

  // This daemon's workers accept on the listeners now: the predecessor steps down.
  // Returns once it has released its control mount, lock and metrics port.
  Result<void> taken(int timeout_ms);

 private:
  UniqueFd conn_;
  pid_t predecessor_ = 0;
  uint32_t workers_ = 0;
  std::vector<InheritedListeners> listeners_;
};

}  // namespace ringlb::daemon
