// Worker: one thread, one io_uring, its own SO_REUSEPORT listeners and connections.
//
// Per client connection the worker
//   1. accepts it (multishot accept),
//   2. asks the VIP's policy for a backend and connects with a linked timeout; after a
//      refusal or timeout it retries on a backend the connection has not tried (the
//      policy excludes tried ones; when none is left, backends out by passive ejection
//      alone), always with the pool and policy of the snapshot it started with,
//   3. forwards both directions with splice(2) through a pipe per direction.
//
// The splice pump. IORING_OP_SPLICE is always punted to io-wq threads, which would move
// the byte copying off this worker's core and add a thread hand-off per chunk. So the
// worker uses io_uring for readiness only (a multishot poll per socket, a one-shot
// POLLOUT when a destination is full) and makes non-blocking splice calls itself:
//   - drain the pipe into the destination first; read from the source only when the
//     pipe is empty. Because of this order, EAGAIN on the read means the source is
//     empty (never "pipe full"), and EAGAIN on the write means the destination is full.
//   - short splices loop; a pump runs at most kPumpBudget transfers per call, then the
//     connection goes on the ready list so that one fast connection cannot starve
//     the others.
//   - in PumpMode::auto_, small messages are copied with recv/send instead: a recv that
//     does not fill the buffer proves the socket drained, which saves the EAGAIN call
//     splice always needs; a send that falls short parks the rest in the (empty) pipe,
//     so the drain-first rule covers it. The first recv that fills the buffer switches
//     the direction to splice for good: bulk never passes through user space.
//   - sockets start with TCP_NODELAY (interactive traffic is not delayed); a direction
//     that carries bulk turns it off on its destination, so the stack sends full
//     segments instead of pushing every splice (measured: -30% CPU per GB).
//   - EOF on a source is forwarded as shutdown(SHUT_WR) on the destination once the pipe
//     is empty; the connection closes when both directions have done so. An error on
//     either side closes both, and the other side gets a reset (SO_LINGER 0).
//   - No silent truncation: a close ringlbd decides (idle timeout, age limit) sends FINs
//     only when no byte is in flight (nothing parked in a pipe, nothing unread or
//     unacknowledged on either socket) and no exchange is open (the backend spoke last,
//     and a client that half-closed has its whole answer); otherwise it resets both
//     peers. The age limit waits for such a moment up to drain_timeout_ms, then resets.
// The per-connection bytes in flight are bounded by the two pipes' sizes.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "ringlb/policy/policy.h"
#include "ringlb/proxy/ring.h"
#include "ringlb/proxy/runtime.h"

namespace ringlb::proxy {

// How a direction moves bytes.
enum class PumpMode : uint8_t {
  splice,  // always splice through the pipe: no payload byte enters user space
  auto_,   // recv/send through a per-worker buffer until a read fills it (bulk),
           // then splice for the rest of the connection (HAProxy's splice-auto idea)
};

struct WorkerOptions {
  size_t index = 0;
  int cpu = -1;  // CPU to pin to; -1: no pinning
  uint32_t max_connections = 65536;
  uint32_t pipe_size = 65536;  // F_SETPIPE_SZ for each pipe
  uint32_t drain_timeout_ms = 30000;
  uint32_t tick_ms = 50;  // idle/age sweeps, accept resumption, drain checks
  PumpMode pump = PumpMode::auto_;
};

class Worker {
 public:
  Worker(Runtime& runtime, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Sets up the ring (on the calling thread, which must be the one calling run()).
  Result<void> init();
  // Serves until a drain completes (Runtime::begin_drain), then returns.
  void run();

 private:
  struct Pipe {
    int read = -1;
    int write = -1;
  };
  struct Direction {
    Pipe pipe;
    uint32_t in_pipe = 0;        // bytes spliced in and not yet out
    bool eof = false;            // the source said EOF
    bool shut = false;           // EOF forwarded: shutdown(destination, SHUT_WR) done
    bool pollout_armed = false;  // waiting for the destination to become writable
    bool bulk = false;           // a read filled the copy buffer or half a pipe
    bool source_hup = false;     // a poll saw RDHUP/HUP/ERR on the source: EOF or error
                                 // may be pending behind the data
  };
  struct LocalVip;
  struct Connection;
  enum class Side : uint8_t { client, backend };

  // Connection slots.
  Connection* allocate();
  Connection* live(UserData ud);
  Connection& slot(uint32_t index);
  void release(Connection& c);

  // Events.
  void handle_cqe(const io_uring_cqe* cqe);
  void on_accept(UserData ud, int res, unsigned flags);
  void on_connect(Connection& c, int res);
  void on_poll(Connection& c, Side side, int res, unsigned flags);
  void on_pollout(Connection& c, Side side, int res);
  void on_tick();

  // Connection life.
  void start_connect(Connection& c);
  bool try_backend(Connection& c);
  const Backend* last_resort(const Pool& pool, const Connection& c) const;
  void established(Connection& c);
  bool send_proxy_header(Connection& c);
  bool pump(Connection& c, bool up);
  int copy_once(Connection& c, Direction& d, int src, int dst, bool up);
  void account(Connection& c, bool up, uint64_t n);
  void mark_bulk(Direction& d, int dst);
  void run_ready();
  void arm_poll(Connection& c, Side side);
  void arm_pollout(Connection& c, Side side);
  void close_connection(Connection& c, bool reset);
  void flush_bytes(Connection& c);
  bool close_would_truncate(const Connection& c) const;
  bool aged(const Connection& c) const;
  void close_if_quiet(Connection& c);

  // Listeners.
  void refresh_vips();
  void cut_connections_of(const LocalVip& vip);
  void arm_accept(LocalVip& vip);
  void cancel_accept(LocalVip& vip);
  void resume_accepting();

  // Resources.
  bool get_pipe(Pipe& pipe);
  void put_pipe(Pipe& pipe, bool empty);
  void release_pooled_pipes();
  void update_clock();

  Runtime& runtime_;
  WorkerOptions options_;
  WorkerStats& stats_;
  Ring ring_;
  SnapshotReader<VipSet> vip_set_;
  uint64_t vip_set_generation_ = 0;
  std::vector<std::shared_ptr<LocalVip>> vips_;  // by accept slot; null: a free slot
  std::vector<uint32_t> slot_generations_;       // last generation used per slot

  std::vector<std::unique_ptr<Connection[]>> chunks_;
  uint32_t free_head_;
  uint32_t slot_count_ = 0;
  std::vector<uint64_t> ready_;  // user_data (index, generation) of connections to pump
  std::vector<Pipe> pipe_pool_;
  std::vector<uint8_t> scratch_;  // copy-mode buffer, at most one pipe's capacity
  uint64_t active_ = 0;

  uint64_t now_ms_ = 0;
  uint64_t next_tick_ms_ = 0;
  uint64_t accept_resume_ms_ = 0;  // after EMFILE/ENFILE: when to try again
  bool accept_paused_ = false;     // descriptors ran out
  bool overloaded_ = false;        // at max_connections
  bool draining_ = false;
  uint64_t drain_deadline_ms_ = 0;
  bool stopped_ = false;
};

}  // namespace ringlb::proxy
