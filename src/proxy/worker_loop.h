// WorkerLoop: the body of a Worker (ringlb/proxy/worker.h explains the design). One
// thread owns it; nothing in it locks. Its member functions live in four files, one job
// each, named at each group below.
#pragma once

#include <sys/socket.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "connection.h"
#include "connection_slab.h"
#include "pipe_pool.h"
#include "ringlb/clock.h"
#include "ringlb/proxy/ring.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/proxy/worker.h"

namespace ringlb::proxy {

// Makes the next close() send a reset instead of a FIN.
inline void set_reset_on_close(int fd) {
  const linger l{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

struct LocalVip;  // listeners.cpp

// The address of a connected socket's peer (getpeername), or nullopt (connect.cpp).
std::optional<SocketAddress> peer_address(int fd);

class WorkerLoop {
 public:
  WorkerLoop(Runtime& runtime, WorkerOptions options);
  ~WorkerLoop();
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  Result<void> init();
  void run();

 private:
  // Events, closing and timers (worker.cpp).
  void handle_cqe(const io_uring_cqe* cqe);
  void on_tick();
  void follow_release();
  // Closes `c`: with resets (SO_LINGER 0) or FINs; `end` says why (the connection log).
  void close_connection(Connection& c, bool reset, End end);
  void log_close(const Connection& c, bool reset, End end);
  void log_rejected(int fd, const std::string& vip);
  void flush_bytes(Connection& c);
  bool close_would_truncate(const Connection& c) const;
  bool aged(const Connection& c) const {
    return c.age_deadline_ms != 0 && now_ms_ >= c.age_deadline_ms;
  }
  void close_if_quiet(Connection& c);
  void update_clock() { now_ms_ = coarse_monotonic_ms(); }

  // Listeners (listeners.cpp).
  void refresh_vips();
  void cut_connections_of(const LocalVip& vip);
  void arm_accept(LocalVip& vip);
  void cancel_accept(LocalVip& vip);
  void cancel_accepts();  // of every VIP
  void resume_accepting();
  void on_accept(UserData ud, int res, unsigned flags);

  // Connecting (connect.cpp).
  void start_connect(Connection& c);
  bool try_backend(Connection& c);
  const Backend* last_resort(const Pool& pool, const Connection& c) const;
  void on_connect(Connection& c, int res);
  void established(Connection& c);
  bool send_proxy_header(Connection& c);

  // Forwarding (pump.cpp).
  void arm_poll(Connection& c, Side side);
  void arm_pollout(Connection& c, Side side);
  void on_poll(Connection& c, Side side, int res, unsigned flags);
  void on_pollout(Connection& c, Side side, int res);
  bool pump(Connection& c, bool up);
  int copy_once(Connection& c, Direction& d, int src, int dst, bool up);
  bool forward_eof(Connection& c, Direction& d, int dst);
  void account(Connection& c, bool up, uint64_t n);
  void source_ended(Connection& c, Direction& d, bool up);
  void mark_bulk(Direction& d, int dst);
  void run_ready();

  Runtime& runtime_;
  WorkerOptions options_;
  WorkerStats& stats_;
  Ring ring_;
  SnapshotReader<VipSet> vip_set_;
  uint64_t vip_set_generation_ = 0;
  std::vector<std::shared_ptr<LocalVip>> vips_;  // by accept slot; null: a free slot
  std::vector<uint32_t> slot_generations_;       // last generation used per slot

  ConnectionSlab slots_;
  std::vector<uint64_t> ready_;  // user_data (index, generation) of connections to pump
  PipePool pipes_;
  std::vector<uint8_t> scratch_;  // copy-mode buffer, at most one pipe's capacity
  uint64_t active_ = 0;
  uint64_t closes_ = 0;  // for the connection log's sampling

  uint64_t now_ms_ = 0;
  uint64_t next_tick_ms_ = 0;
  uint64_t accept_resume_ms_ = 0;  // after EMFILE/ENFILE: when to try again
  bool accept_paused_ = false;     // descriptors ran out
  bool overloaded_ = false;        // at max_connections
  bool draining_ = false;
  uint64_t drain_deadline_ms_ = 0;
  bool stopped_ = false;
  // Hand-over (Runtime::release_listeners): the tick at which this worker cancelled its
  // accepts; 0 before. accepts_stopped is reported two ticks later.
  uint64_t released_tick_ = 0;
  uint64_t ticks_ = 0;
};

}  // namespace ringlb::proxy
