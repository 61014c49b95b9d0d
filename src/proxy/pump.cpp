// Forwarding an established connection: the readiness polls that drive it, and the
// splice/copy pump of each direction (ringlb/proxy/worker.h explains its rules).
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "worker_loop.h"

namespace ringlb::proxy {

namespace {

constexpr int kPumpBudget = 16;  // transfers per pump call before yielding

}  // namespace

void WorkerLoop::arm_poll(Connection& c, Side side) {
  io_uring_sqe* sqe = ring_.get_sqe();
  const bool client = side == Side::client;
  io_uring_prep_poll_multishot(sqe, client ? c.client : c.backend, POLLIN | POLLRDHUP);
  io_uring_sqe_set_data64(
      sqe, UserData{client ? Op::poll_client : Op::poll_backend, c.generation, c.index}.encode());
  c.poll_armed[client ? 0 : 1] = true;
}

void WorkerLoop::arm_pollout(Connection& c, Side side) {
  Direction& d = side == Side::client ? c.down : c.up;
  if (d.pollout_armed) {
    return;
  }
  io_uring_sqe* sqe = ring_.get_sqe();
  const bool client = side == Side::client;
  io_uring_prep_poll_add(sqe, client ? c.client : c.backend, POLLOUT);
  io_uring_sqe_set_data64(
      sqe,
      UserData{client ? Op::pollout_client : Op::pollout_backend, c.generation, c.index}.encode());
  d.pollout_armed = true;
}

void WorkerLoop::on_poll(Connection& c, Side side, int res, unsigned flags) {
  const bool client = side == Side::client;
  if (!(flags & IORING_CQE_F_MORE)) {
    c.poll_armed[client ? 0 : 1] = false;
  }
  if (res < 0) {
    if (res != -ECANCELED) {
      stats_.resets.add();
      close_connection(c, true, client ? End::client_reset : End::backend_reset);
    }
    return;
  }
  const auto events = static_cast<unsigned>(res);
  if (events & (POLLRDHUP | POLLHUP | POLLERR)) {
    (client ? c.up : c.down).source_hup = true;
  }
  // Readable source: pump its direction. Errors and hang-ups: pump both, and the
  // splice calls report what happened.
  bool open = true;
  if (events & (POLLIN | POLLRDHUP | POLLERR | POLLHUP)) {
    open = pump(c, client);
  }
  if (open && (events & (POLLERR | POLLHUP))) {
    open = pump(c, !client);
  }
  if (open && !c.poll_armed[client ? 0 : 1] &&
      !(client ? c.up.eof : c.down.eof)) {  // a multishot poll can end (e.g. overflow)
    arm_poll(c, side);
  }
  if (open && aged(c)) {
    close_if_quiet(c);
  }
}

void WorkerLoop::on_pollout(Connection& c, Side side, int res) {
  // POLLOUT on the client drains the backend->client pipe, and the other way round.
  const bool up = side == Side::backend;
  (up ? c.up : c.down).pollout_armed = false;
  if (res < 0 && res != -ECANCELED) {
    stats_.resets.add();
    close_connection(c, true, up ? End::backend_reset : End::client_reset);
    return;
  }
  if (pump(c, up) && aged(c)) {
    close_if_quiet(c);
  }
}

void WorkerLoop::mark_bulk(Direction& d, int dst) {
  d.bulk = true;
  const int off = 0;
  ::setsockopt(dst, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
}

void WorkerLoop::account(Connection& c, bool up, uint64_t n) {
  c.last_activity_ms = now_ms_;
  c.client_spoke_last = up;
  if (up) {
    c.bytes_in += n;
    c.total_in += n;
    stats_.bytes_in.add(n);
  } else {
    c.bytes_out += n;
    c.total_out += n;
    stats_.bytes_out.add(n);
  }
}

// The source of direction `d` said EOF (the first of the two, for the log, decides
// whose FIN came first).
void WorkerLoop::source_ended(Connection& c, Direction& d, bool up) {
  if (!c.up.eof && !c.down.eof) {
    c.backend_fin_first = !up;
  }
  d.eof = true;
}

// One copy-mode step of PumpMode::auto_: recv into the scratch buffer, send it on.
// Returns 1 to go on pumping, 0 when the direction must wait (source drained,
// destination full, EOF handled by the caller's loop) and -1 when the connection
// was closed. Precondition: the direction's pipe is empty.
int WorkerLoop::copy_once(Connection& c, Direction& d, int src, int dst, bool up) {
  const ssize_t n = ::recv(src, scratch_.data(), scratch_.size(), MSG_DONTWAIT);
  stats_.copy_calls.add();
  if (n == 0) {
    source_ended(c, d, up);
    return 1;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) {
      return errno == EINTR ? 1 : 0;
    }
    stats_.resets.add();
    close_connection(c, true, up ? End::client_reset : End::backend_reset);
    return -1;
  }
  ssize_t sent = ::send(dst, scratch_.data(), static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
  stats_.copy_calls.add();
  if (sent < 0) {
    if (errno != EAGAIN) {
      stats_.resets.add();
      close_connection(c, true, up ? End::backend_reset : End::client_reset);
      return -1;
    }
    sent = 0;
  }
  account(c, up, static_cast<uint64_t>(sent));
  if (sent < n) {
    // The destination is full: park the rest in the pipe, which is empty and holds at
    // least the scratch buffer; the pipe is drained by splice once it is writable.
    if (d.pipe.read < 0 && !pipes_.get_pipe(d.pipe)) {
      stats_.resets.add();
      close_connection(c, true, End::local_error);
      return -1;
    }
    const size_t rest = static_cast<size_t>(n - sent);
    const ssize_t parked = ::write(d.pipe.write, scratch_.data() + sent, rest);
    stats_.copy_calls.add();
    if (parked != static_cast<ssize_t>(rest)) {
      stats_.resets.add();
      close_connection(c, true, End::local_error);
      return -1;
    }
    d.in_pipe += static_cast<uint32_t>(rest);
    arm_pollout(c, up ? Side::backend : Side::client);
    return 0;
  }
  if (static_cast<size_t>(n) == scratch_.size()) {
    mark_bulk(d, dst);  // zero-copy from now on
    return 1;
  }
  // A short read drained the socket's data, and the multishot poll reports the next
  // arrival. An EOF or error that came with the data has no arrival left to report,
  // so once the poll has seen one, read on until the source says so.
  return d.source_hup ? 1 : 0;
}

// The source said EOF and the pipe is empty: forwards the EOF as shutdown(SHUT_WR) on the
// destination, once, and closes the connection when both directions have. Returns false
// when the connection was closed.
bool WorkerLoop::forward_eof(Connection& c, Direction& d, int dst) {
  if (!d.shut) {
    ::shutdown(dst, SHUT_WR);
    d.shut = true;
    if (c.up.shut && c.down.shut) {
      close_connection(c, false, c.backend_fin_first ? End::backend_fin : End::client_fin);
      return false;
    }
  }
  return true;
}

// Moves bytes for one direction until the source is empty, the destination is full or
// the budget is spent. Returns false when the connection was closed.
bool WorkerLoop::pump(Connection& c, bool up) {
  Direction& d = up ? c.up : c.down;
  const int src = up ? c.client : c.backend;
  const int dst = up ? c.backend : c.client;
  for (int budget = kPumpBudget; budget > 0; --budget) {
    if (d.in_pipe > 0) {
      const ssize_t n = ::splice(d.pipe.read, nullptr, dst, nullptr, d.in_pipe,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      stats_.splice_calls.add();
      if (n > 0) {
        d.in_pipe -= static_cast<uint32_t>(n);
        account(c, up, static_cast<uint64_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        arm_pollout(c, up ? Side::backend : Side::client);
        return true;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      stats_.resets.add();  // EPIPE, ECONNRESET, ...
      close_connection(c, true, up ? End::backend_reset : End::client_reset);
      return false;
    }
    if (d.eof) {
      return forward_eof(c, d, dst);
    }
    if (!d.bulk && options_.pump == PumpMode::auto_) {
      const int copied = copy_once(c, d, src, dst, up);
      if (copied < 0) {
        return false;
      }
      if (copied == 0) {
        return true;
      }
      continue;
    }
    if (d.pipe.read < 0 && !pipes_.get_pipe(d.pipe)) {
      stats_.resets.add();  // out of descriptors: no way to move this direction's bytes
      close_connection(c, true, End::local_error);
      return false;
    }
    const ssize_t n = ::splice(src, nullptr, d.pipe.write, nullptr, options_.pipe_size,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    stats_.splice_calls.add();
    if (n > 0) {
      d.in_pipe += static_cast<uint32_t>(n);
      if (!d.bulk && static_cast<uint32_t>(n) >= options_.pipe_size / 2) {
        mark_bulk(d, dst);
      }
      continue;
    }
    if (n == 0) {
      source_ended(c, d, up);
      continue;
    }
    if (errno == EAGAIN) {
      return true;  // the pipe is empty, so the source is
    }
    if (errno == EINTR) {
      continue;
    }
    stats_.resets.add();
    close_connection(c, true, up ? End::client_reset : End::backend_reset);
    return false;
  }
  // Budget spent with work left: come back after the other connections' events.
  if (!c.ready) {
    c.ready = true;
    ready_.push_back(
        UserData{up ? Op::poll_client : Op::poll_backend, c.generation, c.index}.encode());
  }
  return true;
}

void WorkerLoop::run_ready() {
  if (ready_.empty()) {
    return;
  }
  std::vector<uint64_t> batch;
  batch.swap(ready_);
  for (uint64_t v : batch) {
    const UserData ud = UserData::decode(v);
    Connection* c = slots_.live(ud);
    if (c == nullptr || c->phase != Phase::established) {
      continue;
    }
    c->ready = false;
    // Pump both directions: either may have been cut short.
    if (pump(*c, true)) {
      pump(*c, false);
    }
  }
  // Reuse the batch's buffer (no allocation next time), but only when no pump queued a
  // connection while this batch ran: those entries must not be dropped.
  if (ready_.empty()) {
    batch.clear();
    ready_.swap(batch);
  }
}

}  // namespace ringlb::proxy
