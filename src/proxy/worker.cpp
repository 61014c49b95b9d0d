#include "ringlb/proxy/worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringlb::proxy {

namespace {

constexpr uint32_t kChunkSize = 1024;  // connection slots allocated at a time
constexpr uint32_t kNoSlot = 0xffffffffu;
constexpr int kPumpBudget = 16;           // transfers per pump call before yielding
constexpr uint32_t kAcceptRetryMs = 100;  // pause after EMFILE/ENFILE
constexpr size_t kMaxPooledPipes = 256;   // empty pipes kept for reuse

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

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

// A counter of the calling thread, or -1 where the machine has none (virtual machines
// often expose no hardware counters).
int open_thread_counter(uint32_t type, uint64_t config) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config = config;
  attr.exclude_hv = 1;
  const long fd =
      ::syscall(SYS_perf_event_open, &attr, 0 /* this thread */, -1, -1, PERF_FLAG_FD_CLOEXEC);
  return fd < 0 ? -1 : static_cast<int>(fd);
}

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Makes the next close() send a reset instead of a FIN.
void set_reset_on_close(int fd) {
  const linger l{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

}  // namespace

struct Worker::LocalVip {
  std::shared_ptr<VipRuntime> vip;
  SnapshotReader<VipState> reader;
  uint32_t slot = 0;              // user_data index of its accepts; never changes
  uint32_t first_generation = 0;  // generations [first, generation] are this VIP's arms
  uint32_t generation = 0;        // the current arm
  bool accept_armed = false;

  explicit LocalVip(std::shared_ptr<VipRuntime> v) : vip(std::move(v)), reader(vip->state()) {}

  // Whether an accept completion tagged `g` came from one of this VIP's arms (a
  // completion already queued when the accept was re-armed or cancelled still carries
  // a client that must be served).
  bool owns_generation(uint32_t g) const {
    return ((g - first_generation) & 0xffffff) <= ((generation - first_generation) & 0xffffff);
  }
};

enum class Phase : uint8_t { free, connecting, established };

struct Worker::Connection {
  uint32_t index = 0;
  uint32_t generation = 0;
  Phase phase = Phase::free;
  uint32_t next_free = kNoSlot;
  int client = -1;
  int backend = -1;
  // The snapshot the connection started with: its pool and policy serve every retry,
  // and `target` is one of its backends.
  std::shared_ptr<const VipState> state;
  // Its VIP: the accept slot and the slot's first generation, unique per VIP.
  uint32_t vip_slot = 0;
  uint32_t vip_tag = 0;
  uint64_t cut_deadline_ms = 0;  // its VIP was removed: reset if still open by then
  const Backend* target = nullptr;
  Client client_info;
  TriedBackends tried;
  sockaddr_storage backend_address{};
  socklen_t backend_address_len = 0;
  __kernel_timespec connect_timeout{};
  Direction up;    // client -> backend
  Direction down;  // backend -> client
  bool poll_armed[2] = {false, false};
  bool ready = false;  // on the ready list
  uint64_t accepted_ns = 0;
  uint64_t shutdown_epoch = 0;  // the backend's epoch when connected
  uint64_t last_activity_ms = 0;
  uint64_t age_deadline_ms = 0;  // 0: none
  uint64_t age_give_up_ms = 0;   // past the age limit: reset if not quiet by then
  uint64_t bytes_in = 0;         // not yet added to the backend's counters
  uint64_t bytes_out = 0;
  bool client_spoke_last = false;  // the last bytes moved went client -> backend
};

Worker::Worker(Runtime& runtime, WorkerOptions options)
    : runtime_(runtime),
      options_(options),
      stats_(runtime.worker_stats(options.index)),
      vip_set_(runtime.vips()),
      free_head_(kNoSlot) {}

Worker::~Worker() {
  for (uint32_t i = 0; i < slot_count_; ++i) {
    Connection& c = slot(i);
    if (c.phase != Phase::free) {
      close_connection(c, true);
    }
  }
  io_uring_submit(ring_.get());  // their cancellations and closes
  release_pooled_pipes();
}

Result<void> Worker::init() {
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

// ---- slots -----------------------------------------------------------------------------

Worker::Connection& Worker::slot(uint32_t index) {
  return chunks_[index / kChunkSize][index % kChunkSize];
}

Worker::Connection* Worker::allocate() {
  if (free_head_ == kNoSlot) {
    chunks_.push_back(std::make_unique<Connection[]>(kChunkSize));
    for (uint32_t i = kChunkSize; i-- > 0;) {
      Connection& c = chunks_.back()[i];
      c.index = slot_count_ + i;
      c.next_free = free_head_;
      free_head_ = c.index;
    }
    slot_count_ += kChunkSize;
  }
  Connection& c = slot(free_head_);
  free_head_ = c.next_free;
  c.next_free = kNoSlot;
  return &c;
}

Worker::Connection* Worker::live(UserData ud) {
  if (ud.index >= slot_count_) {
    return nullptr;
  }
  Connection& c = slot(ud.index);
  if (c.phase == Phase::free || (c.generation & 0xffffff) != ud.generation) {
    return nullptr;
  }
  return &c;
}

void Worker::release(Connection& c) {
  const uint32_t index = c.index;
  const uint32_t generation = c.generation + 1;
  c = Connection{};
  c.index = index;
  c.generation = generation;
  c.next_free = free_head_;
  free_head_ = index;
}

// ---- event loop ------------------------------------------------------------------------

void Worker::update_clock() {
  now_ms_ = monotonic_ms();
}

void Worker::run() {
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

void Worker::handle_cqe(const io_uring_cqe* cqe) {
  const UserData ud = UserData::decode(cqe->user_data);
  Connection* c = nullptr;
  switch (ud.op) {
    case Op::accept:
      on_accept(ud, cqe->res, cqe->flags);
      return;
    case Op::connect:
      if ((c = live(ud)) != nullptr && c->phase == Phase::connecting) {
        on_connect(*c, cqe->res);
      }
      return;
    case Op::poll_client:
    case Op::poll_backend:
      if ((c = live(ud)) != nullptr && c->phase == Phase::established) {
        on_poll(*c, ud.op == Op::poll_client ? Side::client : Side::backend, cqe->res, cqe->flags);
      }
      return;
    case Op::pollout_client:
    case Op::pollout_backend:
      if ((c = live(ud)) != nullptr && c->phase == Phase::established) {
        on_pollout(*c, ud.op == Op::pollout_client ? Side::client : Side::backend, cqe->res);
      }
      return;
    case Op::connect_timeout:  // the connect's own completion says what happened
    case Op::tick:
    case Op::ignore:
      return;
  }
}

// ---- listeners -------------------------------------------------------------------------

void Worker::refresh_vips() {
  const uint64_t generation = runtime_.vips().generation();
  if (generation == vip_set_generation_) {
    return;
  }
  vip_set_generation_ = generation;
  const auto& set = vip_set_.get();
  // A VIP keeps its slot for as long as it exists, so its queued accept completions
  // stay valid across reloads; a removed VIP leaves a hole for the next new one.
  for (auto& local : vips_) {
    if (!local) {
      continue;
    }
    bool kept = false;
    for (const auto& vip : set->vips) {
      kept = kept || vip == local->vip;
    }
    if (!kept) {
      cancel_accept(*local);
      cut_connections_of(*local);
      local.reset();
    }
  }
  for (const auto& vip : set->vips) {
    bool present = false;
    for (const auto& local : vips_) {
      present = present || (local && local->vip == vip);
    }
    if (present) {
      continue;
    }
    uint32_t slot = 0;
    while (slot < vips_.size() && vips_[slot]) {
      ++slot;
    }
    if (slot == vips_.size()) {
      vips_.emplace_back();
      slot_generations_.push_back(0);
    }
    auto local = std::make_shared<LocalVip>(vip);
    local->slot = slot;
    // Past every generation the slot's previous VIP used.
    local->first_generation = local->generation = ++slot_generations_[slot];
    vips_[slot] = std::move(local);
  }
  resume_accepting();
}

// A reload removed `vip` (its listeners are shut down already): its connections finish
// on their own within drain_timeout_ms, and are reset after that (drain_closes).
void Worker::cut_connections_of(const LocalVip& vip) {
  for (uint32_t i = 0; i < slot_count_; ++i) {
    Connection& c = slot(i);
    if (c.phase != Phase::free && c.vip_slot == vip.slot && c.vip_tag == vip.first_generation) {
      c.cut_deadline_ms = now_ms_ + options_.drain_timeout_ms;
    }
  }
}

void Worker::arm_accept(LocalVip& vip) {
  vip.generation = ++slot_generations_[vip.slot];
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_multishot_accept(sqe, vip.vip->listener(options_.index), nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UserData{Op::accept, vip.generation, vip.slot}.encode());
  vip.accept_armed = true;
}

void Worker::cancel_accept(LocalVip& vip) {
  if (!vip.accept_armed) {
    return;
  }
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_cancel64(sqe, UserData{Op::accept, vip.generation, vip.slot}.encode(), 0);
  io_uring_sqe_set_data64(sqe, UserData{Op::ignore, 0, 0}.encode());
  vip.accept_armed = false;
}

void Worker::resume_accepting() {
  if (draining_ || accept_paused_ || overloaded_) {
    return;
  }
  for (auto& v : vips_) {
    // A VIP whose listeners a reload shut down waits here for refresh_vips to drop it.
    if (v && !v->accept_armed && v->vip->listening()) {
      arm_accept(*v);
    }
  }
}

void Worker::on_accept(UserData ud, int res, unsigned flags) {
  LocalVip* vip = nullptr;
  if (ud.index < vips_.size() && vips_[ud.index] &&
      vips_[ud.index]->owns_generation(ud.generation)) {
    vip = vips_[ud.index].get();
    // Only the current arm's end matters: an older arm was cancelled or ended already.
    if (!(flags & IORING_CQE_F_MORE) && (vip->generation & 0xffffff) == ud.generation) {
      vip->accept_armed = false;
    }
  }
  if (res < 0) {
    if (res == -ECANCELED || res == -EINVAL) {  // cancelled, or the listener was shut down
      return;
    }
    stats_.accept_errors.add();
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
      // Out of descriptors or memory: give back the idle pipes and stop accepting for a
      // while instead of spinning.
      release_pooled_pipes();
      if (!accept_paused_) {
        stats_.accept_pauses.add();
        accept_paused_ = true;
        for (auto& v : vips_) {
          if (v) {
            cancel_accept(*v);
          }
        }
      }
      accept_resume_ms_ = now_ms_ + kAcceptRetryMs;
      return;
    }
    resume_accepting();  // re-arms the VIP whose accept ended, if it did
    return;
  }
  const int fd = res;
  if (vip == nullptr || draining_) {
    ::close(fd);  // its VIP is gone (removed by a reload), or the worker is draining
    return;
  }
  if (!vip->accept_armed) {
    resume_accepting();
  }
  stats_.accepted.add();
  if (active_ >= options_.max_connections) {
    stats_.rejected_overload.add();
    set_reset_on_close(fd);
    ::close(fd);
    if (!overloaded_) {
      overloaded_ = true;
      for (auto& v : vips_) {
        if (v) {
          cancel_accept(*v);
        }
      }
    }
    return;
  }
  Connection* c = allocate();
  c->phase = Phase::connecting;
  c->client = fd;
  c->state = vip->reader.get();  // the one snapshot load of this connection
  c->vip_slot = vip->slot;
  c->vip_tag = vip->first_generation;
  c->last_activity_ms = now_ms_;
  c->accepted_ns = monotonic_ns();
  ++active_;
  stats_.active.add();
  start_connect(*c);
}

// ---- connecting ------------------------------------------------------------------------

void Worker::start_connect(Connection& c) {
  const VipState& state = *c.state;
  if (state.spec.policy == PolicyKind::ip_hash || state.spec.send_proxy_v2) {
    sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    if (::getpeername(c.client, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
      if (auto address = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), len)) {
        c.client_info.address = address->ip;
        c.client_info.port = address->port;
      }
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
    close_connection(c, true);
  }
}

// Picks the next untried backend and starts connecting to it. Returns false when no
// backend is left to try.
bool Worker::try_backend(Connection& c) {
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
const Backend* Worker::last_resort(const Pool& pool, const Connection& c) const {
  const auto ejected = pool.ejected();
  for (size_t k = 0; k < ejected.size(); ++k) {
    const uint32_t index = ejected[(c.index + k) % ejected.size()];
    if (!c.tried.contains(index)) {
      return &pool.backends()[index];
    }
  }
  return nullptr;
}

void Worker::on_connect(Connection& c, int res) {
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
  c.target = nullptr;
  if (draining_ || !try_backend(c)) {
    stats_.no_backend.add();
    close_connection(c, true);
  }
}

void Worker::established(Connection& c) {
  // In auto mode pipes come when a direction first needs one (bulk, or a send that
  // fell short), so idle and small-message connections hold two descriptors, not six.
  if (options_.pump == PumpMode::splice && (!get_pipe(c.up.pipe) || !get_pipe(c.down.pipe))) {
    stats_.resets.add();
    close_connection(c, true);
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
  stats_.connect_time_us.record((monotonic_ns() - c.accepted_ns) / 1000);
  // The client socket has TCP_NODELAY from its listener.
  if (c.state->spec.send_proxy_v2 && !send_proxy_header(c)) {
    stats_.resets.add();
    close_connection(c, true);
    return;
  }
  arm_poll(c, Side::client);
  arm_poll(c, Side::backend);
  // The client may have sent bytes while we connected: pump them now rather than wait
  // for the poll's first completion. The backend has said nothing yet; its poll
  // reports its first bytes.
  pump(c, true);
}

// PROXY protocol v2 (haproxy.org's proxy-protocol.txt, section 2.2): the client's
// address and the VIP's, before any client byte.
bool Worker::send_proxy_header(Connection& c) {
  sockaddr_storage local;
  socklen_t local_len = sizeof(local);
  if (::getsockname(c.client, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return false;
  }
  auto vip_address = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&local), local_len);
  if (!vip_address || vip_address->ip.family() != c.client_info.address.family()) {
    return false;
  }
  uint8_t header[16 + 36];
  static constexpr uint8_t kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                             0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  std::memcpy(header, kSignature, 12);
  header[12] = 0x21;  // version 2, PROXY command
  const bool v4 = vip_address->ip.is_v4();
  header[13] = v4 ? 0x11 : 0x21;  // TCP over IPv4 / IPv6
  const size_t address_bytes = v4 ? 12 : 36;
  header[14] = 0;
  header[15] = static_cast<uint8_t>(address_bytes);
  const size_t ip_size = c.client_info.address.size();
  uint8_t* p = header + 16;
  std::memcpy(p, c.client_info.address.bytes(), ip_size);
  std::memcpy(p + ip_size, vip_address->ip.bytes(), ip_size);
  const uint16_t ports[2] = {htons(c.client_info.port), htons(vip_address->port)};
  std::memcpy(p + 2 * ip_size, ports, 4);
  const size_t total = 16 + address_bytes;
  // A fresh socket's send buffer always has room for these few bytes.
  return ::send(c.backend, header, total, MSG_NOSIGNAL | MSG_DONTWAIT) ==
         static_cast<ssize_t>(total);
}

// ---- forwarding ------------------------------------------------------------------------

void Worker::arm_poll(Connection& c, Side side) {
  io_uring_sqe* sqe = ring_.get_sqe();
  const bool client = side == Side::client;
  io_uring_prep_poll_multishot(sqe, client ? c.client : c.backend, POLLIN | POLLRDHUP);
  io_uring_sqe_set_data64(
      sqe, UserData{client ? Op::poll_client : Op::poll_backend, c.generation, c.index}.encode());
  c.poll_armed[client ? 0 : 1] = true;
}

void Worker::arm_pollout(Connection& c, Side side) {
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

void Worker::on_poll(Connection& c, Side side, int res, unsigned flags) {
  const bool client = side == Side::client;
  if (!(flags & IORING_CQE_F_MORE)) {
    c.poll_armed[client ? 0 : 1] = false;
  }
  if (res < 0) {
    if (res != -ECANCELED) {
      stats_.resets.add();
      close_connection(c, true);
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

void Worker::on_pollout(Connection& c, Side side, int res) {
  // POLLOUT on the client drains the backend->client pipe, and the other way round.
  const bool up = side == Side::backend;
  (up ? c.up : c.down).pollout_armed = false;
  if (res < 0 && res != -ECANCELED) {
    stats_.resets.add();
    close_connection(c, true);
    return;
  }
  if (pump(c, up) && aged(c)) {
    close_if_quiet(c);
  }
}

void Worker::mark_bulk(Direction& d, int dst) {
  d.bulk = true;
  const int off = 0;
  ::setsockopt(dst, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
}

void Worker::account(Connection& c, bool up, uint64_t n) {
  c.last_activity_ms = now_ms_;
  c.client_spoke_last = up;
  if (up) {
    c.bytes_in += n;
    stats_.bytes_in.add(n);
  } else {
    c.bytes_out += n;
    stats_.bytes_out.add(n);
  }
}

// One copy-mode step of PumpMode::auto_: recv into the scratch buffer, send it on.
// Returns 1 to go on pumping, 0 when the direction must wait (source drained,
// destination full, EOF handled by the caller's loop) and -1 when the connection
// was closed. Precondition: the direction's pipe is empty.
int Worker::copy_once(Connection& c, Direction& d, int src, int dst, bool up) {
  const ssize_t n = ::recv(src, scratch_.data(), scratch_.size(), MSG_DONTWAIT);
  stats_.copy_calls.add();
  if (n == 0) {
    d.eof = true;
    return 1;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) {
      return errno == EINTR ? 1 : 0;
    }
    stats_.resets.add();
    close_connection(c, true);
    return -1;
  }
  ssize_t sent = ::send(dst, scratch_.data(), static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
  stats_.copy_calls.add();
  if (sent < 0) {
    if (errno != EAGAIN) {
      stats_.resets.add();
      close_connection(c, true);
      return -1;
    }
    sent = 0;
  }
  account(c, up, static_cast<uint64_t>(sent));
  if (sent < n) {
    // The destination is full: park the rest in the pipe, which is empty and holds at
    // least the scratch buffer; the pipe is drained by splice once it is writable.
    if (d.pipe.read < 0 && !get_pipe(d.pipe)) {
      stats_.resets.add();
      close_connection(c, true);
      return -1;
    }
    const size_t rest = static_cast<size_t>(n - sent);
    const ssize_t parked = ::write(d.pipe.write, scratch_.data() + sent, rest);
    stats_.copy_calls.add();
    if (parked != static_cast<ssize_t>(rest)) {
      stats_.resets.add();
      close_connection(c, true);
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

// Moves bytes for one direction until the source is empty, the destination is full or
// the budget is spent. Returns false when the connection was closed.
bool Worker::pump(Connection& c, bool up) {
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
      close_connection(c, true);
      return false;
    }
    if (d.eof) {
      if (!d.shut) {
        ::shutdown(dst, SHUT_WR);
        d.shut = true;
        if (c.up.shut && c.down.shut) {
          close_connection(c, false);
          return false;
        }
      }
      return true;
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
    if (d.pipe.read < 0 && !get_pipe(d.pipe)) {
      stats_.resets.add();  // out of descriptors: no way to move this direction's bytes
      close_connection(c, true);
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
      d.eof = true;
      continue;
    }
    if (errno == EAGAIN) {
      return true;  // the pipe is empty, so the source is
    }
    if (errno == EINTR) {
      continue;
    }
    stats_.resets.add();
    close_connection(c, true);
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

void Worker::run_ready() {
  if (ready_.empty()) {
    return;
  }
  std::vector<uint64_t> batch;
  batch.swap(ready_);
  for (uint64_t v : batch) {
    const UserData ud = UserData::decode(v);
    Connection* c = live(ud);
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

// ---- closing ---------------------------------------------------------------------------

void Worker::flush_bytes(Connection& c) {
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

void Worker::close_connection(Connection& c, bool reset) {
  if (c.phase == Phase::free) {
    return;
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
  put_pipe(c.up.pipe, c.up.in_pipe == 0);
  put_pipe(c.down.pipe, c.down.in_pipe == 0);
  // now_ms_ is the coarse clock, which may lag the fine one a few ms.
  const uint64_t accepted_ms = c.accepted_ns / 1000000;
  stats_.connection_duration_ms.record(now_ms_ > accepted_ms ? now_ms_ - accepted_ms : 0);
  release(c);
  --active_;
  stats_.active.sub();
  stats_.closed.add();
  if (overloaded_ && active_ < options_.max_connections) {
    overloaded_ = false;
    resume_accepting();
  }
}

// ---- pipes -----------------------------------------------------------------------------

bool Worker::get_pipe(Pipe& pipe) {
  if (!pipe_pool_.empty()) {
    pipe = pipe_pool_.back();
    pipe_pool_.pop_back();
    return true;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return false;  // the pool is empty, so there is nothing to give back
  }
  // A larger pipe moves more per splice call; the kernel may refuse past
  // fs.pipe-max-size, and the default size still works.
  ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(options_.pipe_size));
  stats_.pipes_created.add();
  pipe = Pipe{fds[0], fds[1]};
  return true;
}

void Worker::release_pooled_pipes() {
  for (auto& p : pipe_pool_) {
    ::close(p.read);
    ::close(p.write);
  }
  pipe_pool_.clear();
}

void Worker::put_pipe(Pipe& pipe, bool empty) {
  if (pipe.read < 0) {
    return;
  }
  // A pipe still holding bytes of a dead connection is never handed to another one.
  if (empty && pipe_pool_.size() < kMaxPooledPipes) {
    pipe_pool_.push_back(pipe);
  } else {
    ::close(pipe.read);
    ::close(pipe.write);
  }
  pipe = Pipe{};
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
bool Worker::close_would_truncate(const Connection& c) const {
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

bool Worker::aged(const Connection& c) const {
  return c.age_deadline_ms != 0 && now_ms_ >= c.age_deadline_ms;
}

// Past max_connection_age_ms: closes with FINs at the first moment a close would cut
// nothing short (checked at each tick and after each event of the connection); when
// none comes within drain_timeout_ms, resets both peers.
void Worker::close_if_quiet(Connection& c) {
  if (c.age_give_up_ms == 0) {
    c.age_give_up_ms = now_ms_ + options_.drain_timeout_ms;
  }
  if (!close_would_truncate(c)) {
    stats_.age_closes.add();
    close_connection(c, false);
  } else if (now_ms_ >= c.age_give_up_ms) {
    stats_.age_resets.add();
    close_connection(c, true);
  }
}

void Worker::on_tick() {
  refresh_vips();
  if (!draining_ && runtime_.draining()) {
    draining_ = true;
    drain_deadline_ms_ = now_ms_ + options_.drain_timeout_ms;
    for (auto& v : vips_) {
      if (v) {
        cancel_accept(*v);
      }
    }
  }
  if (accept_paused_ && now_ms_ >= accept_resume_ms_) {
    accept_paused_ = false;
    resume_accepting();
  }
  const bool cut = draining_ && now_ms_ >= drain_deadline_ms_;
  for (uint32_t i = 0; i < slot_count_; ++i) {
    Connection& c = slot(i);
    if (c.phase == Phase::free) {
      continue;
    }
    if (cut || (c.cut_deadline_ms != 0 && now_ms_ >= c.cut_deadline_ms)) {
      stats_.drain_closes.add();
      close_connection(c, true);
      continue;
    }
    if (c.phase != Phase::established) {
      continue;
    }
    flush_bytes(c);
    if (c.target->stats->shutdown_epoch.load(std::memory_order_relaxed) != c.shutdown_epoch) {
      stats_.shutdown_closes.add();
      close_connection(c, true);
      continue;
    }
    const uint32_t idle = c.state->spec.idle_timeout_ms;
    if (idle != 0 && now_ms_ - c.last_activity_ms >= idle) {
      stats_.idle_timeouts.add();
      // A close that would cut something short (bytes in flight, an unanswered
      // request) resets both peers: they must not see a clean end.
      close_connection(c, close_would_truncate(c));
      continue;
    }
    if (aged(c)) {
      close_if_quiet(c);
    }
  }
  if (active_ == 0) {
    // Idle: hold no descriptors beyond the listeners and the ring.
    release_pooled_pipes();
  }
  if (draining_ && active_ == 0) {
    stopped_ = true;
  }
}

}  // namespace ringlb::proxy
