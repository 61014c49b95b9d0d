// Connecting a client to a backend: the policy's pick (or a passively ejected backend as
// a last resort), the connect with its linked timeout, retries on untried backends with
// the snapshot the connection started with, and the move to established.
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "proxy_v2.h"
#include "worker_loop.h"

namespace ringlb::proxy {

std::optional<SocketAddress> peer_address(int fd) {
  sockaddr_storage peer;
  socklen_t len = sizeof(peer);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    return std::nullopt;
  }
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), len);
}

void WorkerLoop::start_connect(Connection& c) {
  const VipState& state = *c.state;
  if (state.spec.policy == PolicyKind::ip_hash || state.spec.send_proxy_v2 ||
      options_.log.ring != nullptr) {
    if (auto address = peer_address(c.client)) {
      c.client_info.address = address->ip;
      c.client_info.port = address->port;
    }
  }
  if (state.spec.max_connection_age_ms != 0) {
    // Up to 10% jitter, so connections opened together do not all close together.
    const uint64_t age = state.spec.max_connection_age_ms;
    const uint64_t jitter = (c.index * 2654435761u + now_ms_) % (age / 10 + 1);
    c.age_deadline_ms = now_ms_ + age - jitter;
  }
  if (!try_backend(c)) {
    stats_.no_backend.add();
    close_connection(c, true, End::no_backend);
  }
}

// Picks the next untried backend and starts connecting to it. Returns false when no
// backend is left to try.
bool WorkerLoop::try_backend(Connection& c) {
  const VipState& state = *c.state;
  const VipSpec& spec = state.spec;
  const Pool& pool = *state.pool;
  Policy& policy = state.policy(options_.index);
  const uint32_t allowed = std::min<uint32_t>(spec.connect_retries + 1, TriedBackends::kCapacity);
  while (c.tried.size() < allowed) {
    const Backend* backend = policy.pick(c.client_info, c.tried);
    if (backend == nullptr) {
      backend = last_resort(pool, c);
    }
    if (backend == nullptr) {
      return false;
    }
    c.tried.add(pool.index_of(*backend));
    if (c.tried.size() > 1) {
      stats_.retries.add();
    }
    const SocketAddress& address = backend->spec.address;
    const int fd = ::socket(address.ip.is_v4() ? AF_INET : AF_INET6,
                            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      stats_.connect_errors.add();
      backend->stats->connect_errors.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c.backend = fd;
    c.target = backend;
    backend->stats->active.fetch_add(1, std::memory_order_relaxed);
    c.backend_address_len = address.to_sockaddr(c.backend_address);
    c.connect_timeout.tv_sec = spec.connect_timeout_ms / 1000;
    c.connect_timeout.tv_nsec = static_cast<int64_t>(spec.connect_timeout_ms % 1000) * 1000000;

    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_connect(sqe, fd, reinterpret_cast<sockaddr*>(&c.backend_address),
                          c.backend_address_len);
    io_uring_sqe_set_data64(sqe, UserData{Op::connect, c.generation, c.index}.encode());
    sqe->flags |= IOSQE_IO_LINK;
    sqe = ring_.get_sqe();
    io_uring_prep_link_timeout(sqe, &c.connect_timeout, 0);
    io_uring_sqe_set_data64(sqe, UserData{Op::connect_timeout, c.generation, c.index}.encode());
    return true;
  }
  return false;
}

// Every eligible backend was tried (or none is eligible): a backend that passive
// ejection took out may be back already (ejection is a guess from earlier connect
// failures), and trying it costs a connect, where giving up costs the request. Backends
// failing active checks are not tried. Starts at a place that varies with the
// connection, so that such clients spread.
const Backend* WorkerLoop::last_resort(const Pool& pool, const Connection& c) const {
  const auto ejected = pool.ejected();
  for (size_t k = 0; k < ejected.size(); ++k) {
    const uint32_t index = ejected[(c.index + k) % ejected.size()];
    if (!c.tried.contains(index)) {
      return &pool.backends()[index];
    }
  }
  return nullptr;
}

void WorkerLoop::on_connect(Connection& c, int res) {
  if (res == 0) {
    established(c);
    return;
  }
  // -ECANCELED: the linked timeout fired first.
  BackendStats& bstats = *c.target->stats;
  if (res == -ECANCELED || res == -ETIMEDOUT) {
    stats_.connect_timeouts.add();
    bstats.connect_timeouts.fetch_add(1, std::memory_order_relaxed);
  } else if (res == -ECONNREFUSED) {
    stats_.connect_refused.add();
    bstats.connect_refused.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats_.connect_errors.add();
    bstats.connect_errors.fetch_add(1, std::memory_order_relaxed);
  }
  // Passive ejection (health.h): the worker that counts the failure that reaches the
  // threshold wakes the health monitor, which ejects the backend.
  const HealthSpec& health = c.state->spec.health;
  if (health.eject_after_failures != 0 &&
      bstats.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1 ==
          health.eject_after_failures) {
    runtime_.notify_health();
  }
  bstats.active.fetch_sub(1, std::memory_order_relaxed);
  ::close(c.backend);
  c.backend = -1;
  c.last_tried = c.target;
  c.target = nullptr;
  if (draining_ || !try_backend(c)) {
    stats_.no_backend.add();
    close_connection(c, true, draining_ ? End::drain : End::connect_failed);
  }
}

void WorkerLoop::established(Connection& c) {
  c.connected_ns = monotonic_ns();  // the log's connect time, even if it ends right here
  // In auto mode pipes come when a direction first needs one (bulk, or a send that
  // fell short), so idle and small-message connections hold two descriptors, not six.
  if (options_.pump == PumpMode::splice &&
      (!pipes_.get_pipe(c.up.pipe) || !pipes_.get_pipe(c.down.pipe))) {
    stats_.resets.add();
    close_connection(c, true, End::local_error);
    return;
  }
  c.phase = Phase::established;
  c.last_activity_ms = now_ms_;
  c.target->stats->connections.fetch_add(1, std::memory_order_relaxed);
  // A success ends the failure streak; the load first keeps the line shared while
  // nothing fails.
  if (c.target->stats->consecutive_failures.load(std::memory_order_relaxed) != 0) {
    c.target->stats->consecutive_failures.store(0, std::memory_order_relaxed);
  }
  c.shutdown_epoch = c.target->stats->shutdown_epoch.load(std::memory_order_relaxed);
  stats_.connect_time_us.record((c.connected_ns - c.accepted_ns) / 1000);
  // The client socket has TCP_NODELAY from its listener.
  if (c.state->spec.send_proxy_v2 && !send_proxy_header(c)) {
    stats_.resets.add();
    close_connection(c, true, End::local_error);
    return;
  }
  arm_poll(c, Side::client);
  arm_poll(c, Side::backend);
  // The client may have sent bytes while we connected: pump them now rather than wait
  // for the poll's first completion. The backend has said nothing yet; its poll
  // reports its first bytes.
  pump(c, true);
}

// PROXY protocol v2 (proxy_v2.h): the client's address and the VIP's, before any client
// byte.
bool WorkerLoop::send_proxy_header(Connection& c) {
  sockaddr_storage local;
  socklen_t local_len = sizeof(local);
  if (::getsockname(c.client, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return false;
  }
  auto vip_address = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&local), local_len);
  if (!vip_address) {
    return false;
  }
  uint8_t header[kProxyV2MaxBytes];
  const size_t total = encode_proxy_v2(
      SocketAddress{.ip = c.client_info.address, .port = c.client_info.port}, *vip_address, header);
  if (total == 0) {
    return false;  // the client and the VIP are not of one family
  }
  // A fresh socket's send buffer always has room for these few bytes.
  return ::send(c.backend, header, total, MSG_NOSIGNAL | MSG_DONTWAIT) ==
         static_cast<ssize_t>(total);
}

}  // namespace ringlb::proxy
