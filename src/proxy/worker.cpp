// The worker's event loop: set-up, CQE dispatch, closing a connection, and the tick's
// timers (drain, idle and age limits, a removed VIP's deadline).
#include "ringlb/proxy/worker.h"

#include <linux/perf_event.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "perf_counter.h"
#include "worker_loop.h"

namespace ringlb::proxy {

namespace {

// ThreadSanitizer tracks descriptors through the libc calls it intercepts and does not
// see io_uring's closes: a socket that one worker made with socket(2) and closed through
// its ring, whose number another worker then got from an accept, looked to it like one
// descriptor shared by two threads (a data race reported by the chaos test). Under TSan
// the workers close their sockets with close(2); everywhere else through the ring.
#if defined(__SANITIZE_THREAD__)
constexpr bool kCloseThroughRing = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kCloseThroughRing = false;
#else
constexpr bool kCloseThroughRing = true;
#endif
#else
constexpr bool kCloseThroughRing = true;
#endif

}  // namespace

Worker::Worker(Runtime& runtime, WorkerOptions options)
    : loop_(std::make_unique<WorkerLoop>(runtime, options)) {}

Worker::~Worker() = default;

Result<void> Worker::init() {
  return loop_->init();
}

void Worker::run() {
  loop_->run();
}

WorkerLoop::WorkerLoop(Runtime& runtime, WorkerOptions options)
    : runtime_(runtime),
      options_(options),
      stats_(runtime.worker_stats(options.index)),
      vip_set_(runtime.vips()),
      pipes_(options.pipe_size, stats_.pipes_created) {}

WorkerLoop::~WorkerLoop() {
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    Connection& c = slots_.slot(i);
    if (c.phase != Phase::free) {
      close_connection(c, true, End::shutdown);
    }
  }
  io_uring_submit(ring_.get());  // their cancellations and closes
  pipes_.release_pooled_pipes();
}

Result<void> WorkerLoop::init() {
  scratch_.resize(std::min<uint32_t>(options_.pipe_size, 65536));
  if (options_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options_.cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      return system_error("pin worker " + std::to_string(options_.index) + " to CPU " +
                              std::to_string(options_.cpu),
                          errno);
    }
  }
  if (auto ring = ring_.init(4096); !ring) {
    return ring;
  }
  runtime_.set_worker_info(
      options_.index,
      WorkerInfo{
          .cpu = options_.cpu,
          .cycles_fd = open_thread_counter(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES),
          .instructions_fd = open_thread_counter(PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS),
          .task_clock_fd = open_thread_counter(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK),
          .ring_flags = ring_.flags_description(),
      });
  return {};
}

// ---- event loop ------------------------------------------------------------------------

void WorkerLoop::run() {
  update_clock();
  next_tick_ms_ = now_ms_ + options_.tick_ms;
  refresh_vips();
  while (!stopped_) {
    __kernel_timespec wait{};
    if (ready_.empty()) {
      const uint64_t left = next_tick_ms_ > now_ms_ ? next_tick_ms_ - now_ms_ : 0;
      wait.tv_sec = static_cast<int64_t>(left / 1000);
      wait.tv_nsec = static_cast<int64_t>((left % 1000) * 1000000);
    }
    io_uring_cqe* cqe = nullptr;
    io_uring_submit_and_wait_timeout(ring_.get(), &cqe, ready_.empty() ? 1 : 0, &wait, nullptr);
    update_clock();
    unsigned head;
    unsigned count = 0;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      handle_cqe(cqe);
      ++count;
    }
    io_uring_cq_advance(ring_.get(), count);
    run_ready();
    if (now_ms_ >= next_tick_ms_) {
      next_tick_ms_ = now_ms_ + options_.tick_ms;
      on_tick();
    }
  }
  io_uring_submit(ring_.get());  // the closes of the last connections
}

void WorkerLoop::handle_cqe(const io_uring_cqe* cqe) {
  const UserData ud = UserData::decode(cqe->user_data);
  Connection* c = nullptr;
  switch (ud.op) {
    case Op::accept:
      on_accept(ud, cqe->res, cqe->flags);
      return;
    case Op::connect:
      if ((c = slots_.live(ud)) != nullptr && c->phase == Phase::connecting) {
        on_connect(*c, cqe->res);
      }
      return;
    case Op::poll_client:
    case Op::poll_backend:
      if ((c = slots_.live(ud)) != nullptr && c->phase == Phase::established) {
        on_poll(*c, ud.op == Op::poll_client ? Side::client : Side::backend, cqe->res, cqe->flags);
      }
      return;
    case Op::pollout_client:
    case Op::pollout_backend:
      if ((c = slots_.live(ud)) != nullptr && c->phase == Phase::established) {
        on_pollout(*c, ud.op == Op::pollout_client ? Side::client : Side::backend, cqe->res);
      }
      return;
    case Op::connect_timeout:  // the connect's own completion says what happened
    case Op::ignore:
      return;
  }
}

// ---- closing ---------------------------------------------------------------------------

void WorkerLoop::flush_bytes(Connection& c) {
  if (c.target == nullptr) {
    return;
  }
  if (c.bytes_in != 0) {
    c.target->stats->bytes_in.fetch_add(c.bytes_in, std::memory_order_relaxed);
    c.bytes_in = 0;
  }
  if (c.bytes_out != 0) {
    c.target->stats->bytes_out.fetch_add(c.bytes_out, std::memory_order_relaxed);
    c.bytes_out = 0;
  }
}

namespace {

void copy_name(char* out, const std::string& name) {
  name.copy(out, std::min(name.size(), kMaxNameLength));
}

}  // namespace

// The connection log's record of `c`, unless sampling skips it; a full ring drops it
// (counted): the worker never waits for the log thread.
void WorkerLoop::log_close(const Connection& c, bool reset, End end) {
  if (closes_++ % options_.log.sample_every != 0) {
    return;
  }
  AccessRecord r;
  r.closed_unix_ns = realtime_ns();
  r.duration_us = (monotonic_ns() - c.accepted_ns) / 1000;
  r.connect_us =
      c.connected_ns != 0 ? static_cast<int64_t>((c.connected_ns - c.accepted_ns) / 1000) : -1;
  r.bytes_client_to_backend = c.total_in;
  r.bytes_backend_to_client = c.total_out;
  r.client = SocketAddress{.ip = c.client_info.address, .port = c.client_info.port};
  r.worker = static_cast<uint16_t>(options_.index);
  r.retries = static_cast<uint8_t>(c.tried.size() > 1 ? c.tried.size() - 1 : 0);
  r.end = end;
  r.reset = reset;
  copy_name(r.vip, c.state->spec.name);
  if (const Backend* backend = c.target != nullptr ? c.target : c.last_tried) {
    r.backend_address = backend->spec.address;
    copy_name(r.backend, backend->spec.name);
  }
  if (!options_.log.ring->push(r)) {
    stats_.log_dropped.add();
  }
}

// The record of a client refused at accept (max_connections): it never had a slot, so
// it has no duration, backend or bytes; sampled like every other close.
void WorkerLoop::log_rejected(int fd, const std::string& vip) {
  if (closes_++ % options_.log.sample_every != 0) {
    return;
  }
  AccessRecord r;
  r.closed_unix_ns = realtime_ns();
  r.client = peer_address(fd).value_or(SocketAddress{});
  r.worker = static_cast<uint16_t>(options_.index);
  r.end = End::overload;
  r.reset = true;
  copy_name(r.vip, vip);
  if (!options_.log.ring->push(r)) {
    stats_.log_dropped.add();
  }
}

void WorkerLoop::close_connection(Connection& c, bool reset, End end) {
  if (c.phase == Phase::free) {
    return;
  }
  if (options_.log.ring != nullptr) {
    log_close(c, reset, end);
  }
  // Cancel each request still armed on the sockets by its exact user_data, which the
  // kernel finds through its hash of polls. (Cancelling by fd walks every armed request
  // of the ring, once per close: after 9000 clients closed at once that took a worker
  // 6-9 s of CPU.) The sockets are closed after the cancellations are submitted.
  auto cancel = [&](Op op) {
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_cancel64(sqe, UserData{op, c.generation, c.index}.encode(), 0);
    io_uring_sqe_set_data64(sqe, UserData{Op::ignore, 0, 0}.encode());
  };
  if (c.phase == Phase::connecting && c.backend >= 0) {
    cancel(Op::connect);  // its linked timeout goes with it
  }
  if (c.poll_armed[0]) {
    cancel(Op::poll_client);
  }
  if (c.poll_armed[1]) {
    cancel(Op::poll_backend);
  }
  if (c.down.pollout_armed) {
    cancel(Op::pollout_client);
  }
  if (c.up.pollout_armed) {
    cancel(Op::pollout_backend);
  }
  // The sockets close through the ring, after the cancellations in the same batch
  // (socket closes run inline): no close(2) per socket.
  for (int fd : {c.client, c.backend}) {
    if (fd < 0) {
      continue;
    }
    if (reset) {
      set_reset_on_close(fd);
    }
    if (!kCloseThroughRing) {
      ::close(fd);
      continue;
    }
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, UserData{Op::ignore, 0, 0}.encode());
  }
  if (c.target != nullptr) {
    flush_bytes(c);
    c.target->stats->active.fetch_sub(1, std::memory_order_relaxed);
  }
  pipes_.put_pipe(c.up.pipe, c.up.in_pipe == 0);
  pipes_.put_pipe(c.down.pipe, c.down.in_pipe == 0);
  // now_ms_ is the coarse clock, which may lag the fine one a few ms.
  const uint64_t accepted_ms = c.accepted_ns / 1000000;
  stats_.connection_duration_ms.record(now_ms_ > accepted_ms ? now_ms_ - accepted_ms : 0);
  slots_.release(c);
  --active_;
  stats_.active.sub();
  stats_.closed.add();
  if (overloaded_ && active_ < options_.max_connections) {
    overloaded_ = false;
    resume_accepting();
  }
}

// ---- timers ----------------------------------------------------------------------------

// Whether a close now would cut something short, so that it must reset both peers:
//   - ringlbd or the kernel holds bytes of the connection: parked in a pipe, received
//     and not yet read (SIOCINQ), or sent and not yet acknowledged (SIOCOUTQ);
//   - an exchange is open: the client spoke last (its request has no answer yet), or it
//     half-closed and the backend's stream has not ended. A FIN would then tell the
//     client that the answer ended, when it never came (or came only in part).
// A connection quiet after the backend's answer, the usual idle keep-alive connection,
// passes: it closes with FINs.
bool WorkerLoop::close_would_truncate(const Connection& c) const {
  if (c.client_spoke_last || (c.up.eof && !c.down.eof)) {
    return true;
  }
  if (c.up.in_pipe != 0 || c.down.in_pipe != 0) {
    return true;
  }
  for (int fd : {c.client, c.backend}) {
    int queued = 0;
    if (::ioctl(fd, SIOCINQ, &queued) != 0 || queued != 0 || ::ioctl(fd, SIOCOUTQ, &queued) != 0 ||
        queued != 0) {
      return true;
    }
  }
  return false;
}

// Past max_connection_age_ms: closes with FINs at the first moment a close would cut
// nothing short (checked at each tick and after each event of the connection); when
// none comes within drain_timeout_ms, resets both peers.
void WorkerLoop::close_if_quiet(Connection& c) {
  if (c.age_give_up_ms == 0) {
    c.age_give_up_ms = now_ms_ + options_.drain_timeout_ms;
  }
  if (!close_would_truncate(c)) {
    stats_.age_closes.add();
    close_connection(c, false, End::age);
  } else if (now_ms_ >= c.age_give_up_ms) {
    stats_.age_resets.add();
    close_connection(c, true, End::age);
  }
}

// Hand-over: the listeners belong to the next ringlbd now. The cancels go out with the
// loop's next submit, which also reaps every accept the kernel completed before them;
// so a tick later nothing more can arrive, and the worker says so a tick after that.
void WorkerLoop::follow_release() {
  ++ticks_;
  if (released_tick_ == 0 && runtime_.listeners_released()) {
    released_tick_ = ticks_;
    cancel_accepts();
  } else if (released_tick_ != 0 && ticks_ > released_tick_ + 1) {
    stats_.accepts_stopped.store(true, std::memory_order_release);
  }
}

void WorkerLoop::on_tick() {
  stats_.heartbeat_ms.store(now_ms_, std::memory_order_relaxed);
  refresh_vips();
  follow_release();
  if (!draining_ && runtime_.draining()) {
    draining_ = true;
    drain_deadline_ms_ = now_ms_ + options_.drain_timeout_ms;
    cancel_accepts();
  }
  if (accept_paused_ && now_ms_ >= accept_resume_ms_) {
    accept_paused_ = false;
    resume_accepting();
  }
  const bool cut = draining_ && now_ms_ >= drain_deadline_ms_;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    Connection& c = slots_.slot(i);
    if (c.phase == Phase::free) {
      continue;
    }
    if (cut || (c.cut_deadline_ms != 0 && now_ms_ >= c.cut_deadline_ms)) {
      stats_.drain_closes.add();
      close_connection(c, true, cut ? End::drain : End::vip_removed);
      continue;
    }
    if (c.phase != Phase::established) {
      continue;
    }
    flush_bytes(c);
    if (c.target->stats->shutdown_epoch.load(std::memory_order_relaxed) != c.shutdown_epoch) {
      stats_.shutdown_closes.add();
      close_connection(c, true, End::backend_shutdown);
      continue;
    }
    const uint32_t idle = c.state->spec.idle_timeout_ms;
    if (idle != 0 && now_ms_ - c.last_activity_ms >= idle) {
      stats_.idle_timeouts.add();
      // A close that would cut something short (bytes in flight, an unanswered
      // request) resets both peers: they must not see a clean end.
      close_connection(c, close_would_truncate(c), End::idle);
      continue;
    }
    if (aged(c)) {
      close_if_quiet(c);
    }
  }
  if (active_ == 0) {
    // Idle: hold no descriptors beyond the listeners and the ring.
    pipes_.release_pooled_pipes();
  }
  if (draining_ && active_ == 0) {
    stopped_ = true;
  }
}

}  // namespace ringlb::proxy
