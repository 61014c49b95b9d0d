// chaos_backend: the chaos test's TCP backend, a process of its own so that the test can
// SIGKILL and SIGSTOP it for real. One epoll thread, non-blocking sockets, bounded
// buffering per connection (it stops reading while its output is backed up), so slow
// readers and many connections cost it little. The protocol is in chaos_proto.h.
//
//   chaos_backend --port P --name NAME [--ready-fd FD]
//
// Listens on 127.0.0.1:P (SO_REUSEADDR, so that a restart takes the same port again;
// backlog 8), writes one byte to FD once it listens. SIGUSR1 resets (SO_LINGER 0, close)
// every open connection: a backend that resets mid-stream. Connections carry SO_LINGER 0
// until they end gracefully, so that a SIGKILL resets them too (the kernel would
// otherwise end them with a FIN, a clean EOF in the middle of a stream).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chaos_proto.h"

namespace {

using namespace ringlb::chaos;

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxPending = 256 * 1024;  // echo bytes held per connection at most
constexpr int kBacklog = 8;

enum class Mode { request, echo, source, sink };

struct Peer {
  int fd = -1;
  Mode mode = Mode::request;
  std::string line;    // the request line, while it comes
  std::string out;     // bytes to send
  size_t out_pos = 0;  // sent of `out`
  uint64_t source_total = 0;
  uint64_t source_sent = 0;  // generated into `out` so far
  uint64_t source_seed = 0;
  uint64_t sink_count = 0;
  uint64_t sink_sum = kChecksumStart;
  bool read_eof = false;
  uint32_t interest = 0;
  size_t pending() const { return out.size() - out_pos; }
};

class Server {
 public:
  Server(int listener, int signals, std::string name)
      : listener_(listener), signals_(signals), header_(make_header(name)) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    add(listener_, EPOLLIN);
    add(signals_, EPOLLIN);
    buf_.resize(kChunk);
  }

  [[noreturn]] void run() {
    epoll_event events[128];
    while (true) {
      const int n = ::epoll_wait(ep_, events, 128, -1);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listener_) {
          accept_all();
        } else if (fd == signals_) {
          on_signal();
        } else if (auto it = peers_.find(fd); it != peers_.end()) {
          if (!serve(*it->second)) {
            drop(it->first, false);
          }
        }
      }
    }
  }

 private:
  void add(int fd, uint32_t events) {
    epoll_event e{.events = events, .data = {.fd = fd}};
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
  }

  void accept_all() {
    for (int k = 0; k < 256; ++k) {
      const int c = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) {
        return;
      }
      // Until it ends gracefully, a connection is reset when this process dies (SIGKILL):
      // a crash must never look like a clean end of the stream. It has SO_LINGER 0 from
      // the listener since accept4().
      auto p = std::make_unique<Peer>();
      p->fd = c;
      p->out = header_;
      p->interest = EPOLLIN | EPOLLOUT;
      add(c, p->interest);
      Peer& ref = *p;
      peers_[c] = std::move(p);
      if (!serve(ref)) {
        drop(c, false);
      }
    }
  }

  void on_signal() {
    signalfd_siginfo info;
    while (::read(signals_, &info, sizeof(info)) == sizeof(info)) {
      if (info.ssi_signo == SIGUSR1) {
        // Reset every open connection.
        std::vector<int> fds;
        for (const auto& [fd, p] : peers_) {
          fds.push_back(fd);
        }
        for (const int fd : fds) {
          drop(fd, true);
        }
      } else {
        std::_Exit(0);
      }
    }
  }

  // Closes a connection: with a reset, or gracefully (FIN after the data sent).
  void drop(int fd, bool reset) {
    const linger l{.l_onoff = reset ? 1 : 0, .l_linger = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    peers_.erase(fd);
  }

  // Parses the request line; false if it is bad.
  bool start(Peer& p) {
    const std::string& l = p.line;
    if (l == "E") {
      p.mode = Mode::echo;
      return true;
    }
    uint64_t n = 0;
    uint64_t seed = 0;
    if (std::sscanf(l.c_str(), "S %" SCNu64 " %" SCNu64, &n, &seed) == 2) {
      p.mode = Mode::source;
      p.source_total = n;
      p.source_seed = seed;
      return true;
    }
    if (std::sscanf(l.c_str(), "K %" SCNu64, &n) == 1) {
      p.mode = Mode::sink;
      return true;
    }
    return false;
  }

  // Takes `n` bytes of the client's data (after the request line).
  void consume(Peer& p, const uint8_t* data, size_t n) {
    if (p.mode == Mode::echo) {
      p.out.append(reinterpret_cast<const char*>(data), n);
    } else if (p.mode == Mode::sink) {
      p.sink_count += n;
      p.sink_sum = checksum(p.sink_sum, data, n);
    }
    // source: further client bytes are ignored
  }

  bool read_some(Peer& p) {
    for (int rounds = 0; rounds < 16 && !p.read_eof; ++rounds) {
      size_t room = kChunk;
      if (p.mode == Mode::echo || p.mode == Mode::request) {
        if (p.pending() >= kMaxPending) {
          return true;
        }
        room = std::min(room, kMaxPending - p.pending());
      }
      const ssize_t r = ::recv(p.fd, buf_.data(), room, 0);
      if (r < 0) {
        return errno == EAGAIN || errno == EINTR;
      }
      if (r == 0) {
        p.read_eof = true;
        if (p.mode == Mode::request) {
          return false;  // EOF before a request
        }
        if (p.mode == Mode::sink) {
          char reply[64];
          std::snprintf(reply, sizeof(reply), "%" PRIu64 " %016" PRIx64 "\n", p.sink_count,
                        p.sink_sum);
          p.out += reply;
        }
        return true;
      }
      size_t at = 0;
      const auto got = static_cast<size_t>(r);
      while (p.mode == Mode::request && at < got) {
        const char c = static_cast<char>(buf_[at++]);
        if (c == '\n') {
          if (!start(p)) {
            return false;
          }
        } else {
          p.line += c;
          if (p.line.size() > kMaxRequestLine) {
            return false;
          }
        }
      }
      if (at < got) {
        consume(p, buf_.data() + at, got - at);
      }
    }
    return true;
  }

  // Sends what is pending; false on a send error.
  bool write_some(Peer& p) {
    while (true) {
      if (p.pending() == 0) {
        p.out.clear();
        p.out_pos = 0;
        if (p.mode == Mode::source && p.source_sent < p.source_total) {
          const size_t n =
              static_cast<size_t>(std::min<uint64_t>(kChunk, p.source_total - p.source_sent));
          p.out.resize(n);
          fast_fill(p.source_seed, p.source_sent, reinterpret_cast<uint8_t*>(p.out.data()), n);
          p.source_sent += n;
        } else {
          return true;
        }
      }
      const ssize_t w =
          ::send(p.fd, p.out.data() + p.out_pos, p.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        return errno == EAGAIN || errno == EINTR;
      }
      p.out_pos += static_cast<size_t>(w);
      if (p.pending() != 0) {
        return true;  // the socket is full
      }
    }
  }

  bool finished(const Peer& p) const {
    if (p.pending() != 0) {
      return false;
    }
    switch (p.mode) {
      case Mode::request:
        return false;
      case Mode::echo:
      case Mode::sink:
        return p.read_eof;
      case Mode::source:
        return p.source_sent == p.source_total;
    }
    return false;
  }

  // Returns false when the connection is to be closed.
  bool serve(Peer& p) {
    if (!read_some(p) || !write_some(p)) {
      return false;
    }
    // Echo bytes freed room: read again (level-triggered, so a later round would too).
    if (finished(p)) {
      return false;
    }
    uint32_t want = 0;
    const bool reading = !p.read_eof && !((p.mode == Mode::echo || p.mode == Mode::request) &&
                                          p.pending() >= kMaxPending);
    if (reading) {
      want |= EPOLLIN;
    }
    if (p.pending() != 0 || (p.mode == Mode::source && p.source_sent < p.source_total)) {
      want |= EPOLLOUT;
    }
    if (want != p.interest) {
      p.interest = want;
      epoll_event e{.events = want, .data = {.fd = p.fd}};
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, p.fd, &e);
    }
    return true;
  }

  int listener_;
  int signals_;
  int ep_ = -1;
  std::string header_;
  std::vector<uint8_t> buf_;
  std::map<int, std::unique_ptr<Peer>> peers_;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  int ready_fd = -1;
  std::string name;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--name") {
      name = argv[i + 1];
    } else if (flag == "--ready-fd") {
      ready_fd = std::atoi(argv[i + 1]);
    }
  }
  if (port <= 0 || port > 65535 || name.empty() || name.size() > kMaxNameSize) {
    std::fprintf(stderr, "usage: chaos_backend --port P --name NAME(1..%zu) [--ready-fd FD]\n",
                 kMaxNameSize);
    return 2;
  }
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  const int signals = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Accepted sockets inherit SO_LINGER 0 from the listener: a SIGKILL between accept4()
  // and a setsockopt of its own would have ended a connection with a FIN (chaos seed 3
  // saw a clean EOF of an echo whose backend was killed as it accepted).
  const linger abort{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(listener, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A restart may race the old process's last sockets: retry for a while.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EADDRINUSE || std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "chaos_backend %s: bind 127.0.0.1:%d: %s\n", name.c_str(), port,
                   std::strerror(errno));
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (::listen(listener, kBacklog) != 0) {
    std::fprintf(stderr, "chaos_backend %s: listen: %s\n", name.c_str(), std::strerror(errno));
    return 1;
  }
  if (ready_fd >= 0) {
    (void)!::write(ready_fd, "R", 1);
    ::close(ready_fd);
  }
  Server(listener, signals, name).run();
}
