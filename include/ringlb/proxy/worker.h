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

#include <cstddef>
#include <cstdint>
#include <memory>

#include "ringlb/proxy/access_log.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"

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
  AccessLogSink log;  // the connection log, when [daemon] access_log is set
};

// The loop itself, private to src/proxy (worker_loop.h). Its files, one job each:
//   worker.cpp       the event loop and CQE dispatch, closing, the tick's timers
//   listeners.cpp    VIP accept slots across reloads, multishot accept, overload
//   connect.cpp      backend choice, connect and retry, established
//   pump.cpp         readiness polls and the splice/copy pump
// with connection_slab.h (slots and generations), pipe_pool.h, proxy_v2.h (the PROXY
// header) and perf_counter.h (the thread's perf counters).
class WorkerLoop;

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
  std::unique_ptr<WorkerLoop> loop_;
};

}  // namespace ringlb::proxy
