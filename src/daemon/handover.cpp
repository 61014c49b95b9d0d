#include "daemon/handover.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>

#include "daemon/instance_lock.h"

namespace ringlb::daemon {
namespace {

constexpr int kHelloTimeoutMs = 5000;
// The successor binds, applies its config and starts its workers before it says "taken".
constexpr int kTakenTimeoutMs = 60000;
// The old daemon waits for its workers (two ticks) and unmounts before "released".
constexpr int kReleaseTimeoutMs = 30000;

sockaddr_un address_of(const std::string& name, socklen_t& len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Abstract: sun_path[0] is NUL, the name follows, and the length ends it.
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return addr;
}

// One message, waiting up to `timeout_ms` (and for `wake`, when given, to stay quiet).
// An fd sent along lands in `fd`.
std::optional<std::string> receive(int conn, int timeout_ms, UniqueFd* fd = nullptr,
                                   int wake = -1) {
  pollfd polled[2] = {{.fd = conn, .events = POLLIN, .revents = 0},
                      {.fd = wake, .events = POLLIN, .revents = 0}};
  if (::poll(polled, wake >= 0 ? 2 : 1, timeout_ms) <= 0 || (polled[1].revents & POLLIN)) {
    return std::nullopt;
  }
  char buf[512];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  iovec iov{.iov_base = buf, .iov_len = sizeof(buf)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0) {
    return std::nullopt;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int received;
      std::memcpy(&received, CMSG_DATA(c), sizeof(int));
      UniqueFd owned(received);
      if (fd != nullptr) {
        *fd = std::move(owned);
      }
    }
  }
  return std::string(buf, static_cast<size_t>(n));
}

bool send_message(int conn, const std::string& text, int fd = -1) {
  iovec iov{.iov_base = const_cast<char*>(text.data()), .iov_len = text.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  return ::sendmsg(conn, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

std::optional<ucred> peer_of(int conn) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return std::nullopt;
  }
  return cred;
}

}  // namespace

std::string handover_socket_name(const std::string& control_dir) {
  std::error_code ec;
  std::string dir = std::filesystem::weakly_canonical(control_dir, ec).string();
  if (ec || dir.empty()) {
    dir = control_dir;
  }
  std::string name = "ringlbd-handover:" + dir;
  if (name.size() > sizeof(sockaddr_un::sun_path) - 1) {
    // FNV-1a: the same in every build, so an upgraded binary finds the old one.
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char ch : dir) {
      h = (h ^ ch) * 0x100000001b3ULL;
    }
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
    name = std::string("ringlbd-handover:#") + hex;
  }
  return name;
}

// ---- old side --------------------------------------------------------------------------

Result<std::unique_ptr<HandoverServer>> HandoverServer::start(const std::string& control_dir,
                                                              const Runtime& runtime,
                                                              std::function<void(pid_t)> on_taken) {
  std::unique_ptr<HandoverServer> server(new HandoverServer());
  server->runtime_ = &runtime;
  server->on_taken_ = std::move(on_taken);
  server->listener_ = UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  server->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  const std::string name = handover_socket_name(control_dir);
  socklen_t len;
  const sockaddr_un addr = address_of(name, len);
  if (!server->listener_.valid() || !server->stop_.valid() ||
      ::bind(server->listener_.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      ::listen(server->listener_.get(), 4) != 0) {
    return system_error("hand-over socket @" + name, errno);
  }
  server->thread_ = std::thread([s = server.get()] { s->serve(); });
  return server;
}

HandoverServer::~HandoverServer() {
  const uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  {
    std::lock_guard lock(mu_);
    released_ = true;  // a thread waiting for released() gives up
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void HandoverServer::released() {
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

void HandoverServer::serve() {
  while (true) {
    pollfd polled[2] = {{.fd = listener_.get(), .events = POLLIN, .revents = 0},
                        {.fd = stop_.get(), .events = POLLIN, .revents = 0}};
    if (::poll(polled, 2, -1) < 0 && errno != EINTR) {
      return;
    }
    if (polled[1].revents & POLLIN) {
      return;
    }
    if (!(polled[0].revents & POLLIN)) {
      continue;
    }
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      continue;
    }
    const auto peer = peer_of(conn.get());
    // Only root or this daemon's own user may take its sockets.
    if (!peer || (peer->uid != 0 && peer->uid != ::geteuid())) {
      send_message(conn.get(), "error permission denied: only root or uid " +
                                   std::to_string(::geteuid()) + " may take over");
      continue;
    }
    const auto hello = receive(conn.get(), kHelloTimeoutMs, nullptr, stop_.get());
    if (!hello || *hello != "hello 1") {
      send_message(conn.get(), "error expected \"hello 1\"");
      continue;
    }
    if (runtime_->draining()) {
      send_message(conn.get(),
                   "error this ringlbd is draining: start a new one without --handover");
      continue;
    }
    answer(conn.get());
    if (runtime_->listeners_released()) {
      listener_.reset();  // handed over: one successor only
      return;
    }
  }
}

void HandoverServer::answer(int conn) {
  struct Listener {
    std::string address;
    int fd;
  };
  std::vector<Listener> listeners;
  const auto set = runtime_->vips().load();  // keeps the VIPs (and their sockets) alive
  for (const auto& vip : set->vips) {
    for (size_t w = 0; w < vip->listener_count(); ++w) {
      listeners.push_back({vip->listen().to_string(), vip->listener(w)});
    }
  }
  bool sent = send_message(conn, "listeners " + std::to_string(::getpid()) + " " +
                                     std::to_string(runtime_->worker_count()) + " " +
                                     std::to_string(listeners.size()));
  for (const auto& l : listeners) {
    sent = sent && send_message(conn, l.address, l.fd);
  }
  if (!sent) {
    return;
  }
  // The successor's copies keep the sockets open from here on, whatever happens to it.
  const auto taken = receive(conn, kTakenTimeoutMs, nullptr, stop_.get());
  if (!taken || *taken != "taken") {
    return;  // it failed to start (or gave up): this daemon goes on serving
  }
  const auto successor = peer_of(conn);
  on_taken_(successor ? successor->pid : 0);
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(kReleaseTimeoutMs), [this] { return released_; });
  lock.unlock();
  send_message(conn, "released");
}

// ---- new side --------------------------------------------------------------------------

Result<Handover> Handover::request(const std::string& control_dir) {
  const std::string name = handover_socket_name(control_dir);
  Handover handover;
  handover.conn_ = UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  socklen_t len;
  const sockaddr_un addr = address_of(name, len);
  if (!handover.conn_.valid() ||
      ::connect(handover.conn_.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    return Error{"--handover: no ringlbd serves control_dir " + control_dir +
                     " (nothing answers on @" + name + ": " + std::strerror(errno) + ")",
                 ESRCH};
  }
  // The process the control_dir names, and none other, may hand its sockets over.
  const auto peer = peer_of(handover.conn_.get());
  const std::string named = InstanceLock::holder(control_dir);
  if (!peer || named != std::to_string(peer->pid)) {
    return Error{"--handover: @" + name + " is held by pid " +
                     (peer ? std::to_string(peer->pid) : std::string("?")) + ", but " +
                     control_dir + " names " + (named.empty() ? std::string("no pid") : named) +
                     ": refusing its sockets",
                 EPERM};
  }
  const int conn = handover.conn_.get();
  std::optional<std::string> header;
  if (!send_message(conn, "hello 1") || !(header = receive(conn, kHelloTimeoutMs))) {
    return Error{"--handover: pid " + named + " did not answer", ETIMEDOUT};
  }
  std::istringstream fields(*header);
  std::string word;
  size_t count = 0;
  if (!(fields >> word >> handover.predecessor_ >> handover.workers_ >> count) ||
      word != "listeners") {
    return Error{"--handover: pid " + named + " refused: " + *header, EPERM};
  }
  for (size_t i = 0; i < count; ++i) {
    UniqueFd fd;
    const auto text = receive(conn, kHelloTimeoutMs, &fd);
    const auto address = text ? SocketAddress::parse(*text) : std::nullopt;
    if (!address || !fd.valid()) {
      return Error{"--handover: listener " + std::to_string(i + 1) + " of " +
                       std::to_string(count) + " did not arrive",
                   EPROTO};
    }
    auto it = std::find_if(handover.listeners_.begin(), handover.listeners_.end(),
                           [&](const auto& l) { return l.address == *address; });
    if (it == handover.listeners_.end()) {
      handover.listeners_.push_back({*address, {}});
      it = handover.listeners_.end() - 1;
    }
    it->fds.push_back(std::move(fd));
  }
  return handover;
}

Result<void> Handover::taken(int timeout_ms) {
  if (!send_message(conn_.get(), "taken")) {
    return system_error("--handover: telling pid " + std::to_string(predecessor_), errno);
  }
  const auto answer = receive(conn_.get(), timeout_ms);
  if (!answer || *answer != "released") {
    return Error{"--handover: pid " + std::to_string(predecessor_) + " did not release within " +
                     std::to_string(timeout_ms) + " ms",
                 ETIMEDOUT};
  }
  return {};
}

}  // namespace ringlb::daemon
