// Why this file is long: the one harness every proxy test uses (ringlbd as a
// child, backends, raw clients, control-tree access); its parts are small and share
// the process and port bookkeeping.
#include "harness.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "ringlb/model/address.h"

namespace ringlb::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

sockaddr_storage make_address(const std::string& host, uint16_t port, socklen_t& len) {
  auto ip = IpAddress::parse(host);
  if (!ip) {
    throw std::runtime_error("bad test address " + host);
  }
  sockaddr_storage storage;
  len = SocketAddress{*ip, port}.to_sockaddr(storage);
  return storage;
}

bool wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{.fd = fd, .events = events, .revents = 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

}  // namespace

void fill_stream(uint64_t seed, uint64_t offset, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = stream_byte(seed, offset + i);
  }
}

uint16_t free_port(bool v6) {
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t len;
  auto address = make_address(v6 ? "::1" : "127.0.0.1", 0, len);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), len) != 0) {
    throw std::runtime_error("free_port: bind failed");
  }
  sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len);
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&bound), bound_len)->port;
}

void raise_fd_limit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// ---- SilentListener --------------------------------------------------------------------

SilentListener::SilentListener(bool black_hole_syns) : port_(free_port()) {
  listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t len;
  auto address = make_address("127.0.0.1", port_, len);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), len) != 0 ||
      ::listen(listener_.get(), black_hole_syns ? 0 : 128) != 0) {
    throw std::runtime_error("silent listener bind/listen failed: " + std::string(strerror(errno)));
  }
  // With backlog 0 the queue holds one connection: two fill it.
  for (int i = 0; black_hole_syns && i < 2; ++i) {
    fillers_.push_back(Conn::open("127.0.0.1", port_, 300));
  }
}

// ---- Backend ---------------------------------------------------------------------------

Backend::Backend(std::string name, BackendMode mode, bool v6)
    : name_(std::move(name)), mode_(mode), v6_(v6) {
  listener_ =
      UniqueFd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t len;
  auto address = make_address(v6 ? "::1" : "127.0.0.1", 0, len);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), len) != 0 ||
      ::listen(listener_.get(), 4096) != 0) {
    throw std::runtime_error("backend bind/listen failed: " + std::string(strerror(errno)));
  }
  sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len);
  port_ = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&bound), bound_len)->port;
  wake_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  thread_ = std::thread([this] { loop(); });
}

Backend::~Backend() {
  stop_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

std::string Backend::address() const {
  return (v6_ ? "[::1]:" : "127.0.0.1:") + std::to_string(port_);
}

void Backend::reset_all() {
  reset_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void Backend::loop() {
  struct Peer {
    UniqueFd fd;
    std::string out;
    size_t out_pos = 0;
    uint64_t read = 0;
    bool eof = false;
    bool header_done = false;
    std::string header;
  };
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{.events = EPOLLIN, .data = {.fd = listener_.get()}};
  ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, listener_.get(), &ev);
  ev.data.fd = wake_.get();
  ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  std::map<int, Peer> peers;
  std::vector<uint8_t> buf(1 << 16);
  constexpr size_t kMaxPending = 1 << 20;

  auto update = [&](Peer& p) {
    epoll_event e{};
    e.data.fd = p.fd.get();
    const bool pending = p.out_pos < p.out.size();
    if (!p.eof && p.out.size() - p.out_pos < kMaxPending) {
      e.events |= EPOLLIN;
    }
    if (pending) {
      e.events |= EPOLLOUT;
    }
    ::epoll_ctl(ep.get(), EPOLL_CTL_MOD, p.fd.get(), &e);
  };
  // Returns false when the peer is finished and must be dropped.
  auto flush = [&](Peer& p) {
    while (p.out_pos < p.out.size()) {
      const ssize_t n = ::send(p.fd.get(), p.out.data() + p.out_pos, p.out.size() - p.out_pos,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        p.out_pos += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        break;
      }
      return false;
    }
    if (p.out_pos == p.out.size()) {
      p.out.clear();
      p.out_pos = 0;
    }
    if (p.eof && p.out.empty()) {
      return false;  // everything answered: close
    }
    update(p);
    return true;
  };

  while (!stop_) {
    epoll_event events[64];
    const int n = ::epoll_wait(ep.get(), events, 64, 200);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_.get()) {
        uint64_t v;
        (void)!::read(wake_.get(), &v, sizeof(v));
        if (reset_.exchange(false)) {
          for (auto& [pfd, p] : peers) {
            const linger l{.l_onoff = 1, .l_linger = 0};
            ::setsockopt(pfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
          }
          peers.clear();
        }
        continue;
      }
      if (fd == listener_.get()) {
        while (true) {
          const int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) {
            break;
          }
          ++connections_;
          Peer p;
          p.fd = UniqueFd(c);
          if (mode_ == BackendMode::name) {
            p.out = name_ + "\n";
          }
          epoll_event e{.events = EPOLLIN, .data = {.fd = c}};
          ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, c, &e);
          auto& stored = peers[c] = std::move(p);
          if (!flush(stored)) {
            peers.erase(c);
          }
        }
        continue;
      }
      auto it = peers.find(fd);
      if (it == peers.end()) {
        continue;
      }
      Peer& p = it->second;
      bool alive = true;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        while (alive && !p.eof && p.out.size() - p.out_pos < kMaxPending) {
          const ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
          if (r > 0) {
            p.read += static_cast<uint64_t>(r);
            const char* data = reinterpret_cast<const char*>(buf.data());
            size_t size = static_cast<size_t>(r);
            if (mode_ == BackendMode::proxy_v2 && !p.header_done) {
              p.header.append(data, size);
              if (p.header.size() < 16) {
                continue;
              }
              const size_t total = 16 + ((static_cast<uint8_t>(p.header[14]) << 8) |
                                         static_cast<uint8_t>(p.header[15]));
              if (p.header.size() < total) {
                continue;
              }
              p.header_done = true;
              // Reply with the source address the header names.
              const bool v4 = p.header[13] == 0x11;
              char text[INET6_ADDRSTRLEN];
              inet_ntop(v4 ? AF_INET : AF_INET6, p.header.data() + 16, text, sizeof(text));
              const size_t ip_size = v4 ? 4 : 16;
              uint16_t port;
              std::memcpy(&port, p.header.data() + 16 + 2 * ip_size, 2);
              p.out += "source " + std::string(text) + " " + std::to_string(ntohs(port)) + "\n";
              p.out += p.header.substr(total);  // client bytes after the header: echo
              continue;
            }
            if (mode_ != BackendMode::reply_after_eof) {
              p.out.append(data, size);
            }
            continue;
          }
          if (r == 0) {
            p.eof = true;
            if (mode_ == BackendMode::reply_after_eof) {
              p.out += name_ + ":" + std::to_string(p.read);
            }
            break;
          }
          if (errno != EAGAIN) {
            alive = false;
          }
          break;
        }
      }
      if (alive) {
        alive = flush(p);
      }
      if (!alive) {
        peers.erase(it);
      }
    }
  }
}

// ---- Ringlbd ---------------------------------------------------------------------------

Ringlbd::Ringlbd(const std::string& config_text, std::vector<std::string> extra_args,
                 int nofile_limit, const std::string& control_dir) {
  char tmpl[] = "/tmp/ringlbd-test-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  config_path_ = dir_ + "/ringlb.toml";
  stats_path_ = dir_ + "/stats";
  log_path_ = dir_ + "/log";
  write_config(config_text);
  // Each daemon gets its own control mount, so tests never meet at /run/ringlb.
  control_dir_ = control_dir.empty() ? dir_ + "/control" : control_dir;
  own_control_dir_ = control_dir.empty();
  std::vector<std::string> args = {RINGLBD_PATH, "--config",      config_path_, "--stats-file",
                                   stats_path_,  "--control-dir", control_dir_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  // CI runs the suite once per pump mode (tests/proxy/CMakeLists.txt).
  if (const char* pump = std::getenv("RINGLBD_PUMP"); pump != nullptr && *pump != '\0') {
    args.insert(args.end(), {"--pump", pump});
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    // If the test process dies without running destructors (a crash, a sanitizer
    // abort), the daemon goes with it instead of lingering.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    // Nothing else of this process: a client socket the daemon inherited would keep
    // that connection open after the client closed it (as a service manager's daemon,
    // it starts with standard input, output and error only).
    ::close_range(3, ~0U, 0);
    if (nofile_limit > 0) {
      const rlimit limit{static_cast<rlim_t>(nofile_limit), static_cast<rlim_t>(nofile_limit)};
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      abandon_start("ringlbd exited at start: ");
    }
    // Listeners are bound before this line is logged; connecting to find out would
    // leave a connection in the counters.
    if (log().find("ringlbd: serving") != std::string::npos) {
      return;
    }
    ::usleep(20000);
  }
  abandon_start("ringlbd did not start listening: ");
}

// A constructor that throws gets no destructor: the daemon (if still running), its
// mount and its directory go here, and the exception carries its log.
void Ringlbd::abandon_start(const std::string& why) {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  const std::string text = why + log();
  if (own_control_dir_) {
    ::umount2(control_dir_.c_str(), MNT_DETACH);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  throw std::runtime_error(text);
}

Ringlbd::~Ringlbd() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    const int status = wait_exit(10000);
    if (status == -1) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      ADD_FAILURE() << "ringlbd did not drain within 10 s of SIGTERM\n" << log();
    } else if (status != 0) {
      ADD_FAILURE() << "ringlbd exited " << status << " after SIGTERM\n" << log();
    }
  }
  // A sanitizer build of the daemon reports into its log; any report fails the test.
  const std::string text = log();
  if (text.find("Sanitizer") != std::string::npos ||
      text.find("runtime error") != std::string::npos) {
    ADD_FAILURE() << "sanitizer report from ringlbd:\n" << text;
  }
  // The daemon unmounts at exit (its guardian does even after SIGKILL); a mount still
  // present here would make remove_all fail, so detach it to be sure.
  if (own_control_dir_) {
    ::umount2(control_dir_.c_str(), MNT_DETACH);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void Ringlbd::write_config(const std::string& text) {
  const std::string tmp = config_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  // A config with hash_seed must be private, as ringlbd requires (config.h).
  ::chmod(tmp.c_str(), 0600);
  std::rename(tmp.c_str(), config_path_.c_str());
}

void Ringlbd::signal(int sig) const {
  ::kill(pid_, sig);
}

int Ringlbd::wait_exit(int timeout_ms) {
  if (pid_ <= 0) {
    return -1;
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (Clock::now() >= deadline) {
      return -1;
    }
    ::usleep(10000);
  }
}

std::map<std::string, uint64_t> Ringlbd::stats() {
  std::filesystem::remove(stats_path_);
  signal(SIGUSR1);
  std::map<std::string, uint64_t> out;
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (!std::filesystem::exists(stats_path_) && Clock::now() < deadline) {
    ::usleep(5000);
  }
  std::ifstream in(stats_path_);
  std::string name;
  uint64_t value;
  while (in >> name >> value) {
    out[name] = value;
  }
  return out;
}

uint64_t Ringlbd::worker_total(const std::string& name) {
  uint64_t total = 0;
  for (const auto& [key, value] : stats()) {
    if (key.rfind("worker.", 0) == 0 && key.size() > name.size() &&
        key.compare(key.size() - name.size() - 1, std::string::npos, "." + name) == 0) {
      total += value;
    }
  }
  return total;
}

size_t Ringlbd::open_fds() const {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd")) {
    ++n;
  }
  return n;
}

std::string Ringlbd::log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- Conn ------------------------------------------------------------------------------

Conn Conn::open(const std::string& host, uint16_t port, int timeout_ms, const std::string& source) {
  Conn c;
  socklen_t len;
  auto address = make_address(host, port, len);
  UniqueFd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!source.empty()) {
    socklen_t source_len;
    auto local = make_address(source, 0, source_len);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), source_len) != 0) {
      return c;
    }
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), len) != 0) {
    if (errno != EINPROGRESS || !wait_fd(fd.get(), POLLOUT, timeout_ms)) {
      return c;
    }
    int error = 0;
    socklen_t elen = sizeof(error);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &elen);
    if (error != 0) {
      return c;
    }
  }
  c.fd_ = std::move(fd);
  return c;
}

bool Conn::send_bytes(const void* data, size_t n, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::send(fd_.get(), p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EAGAIN && wait_fd(fd_.get(), POLLOUT, remaining_ms(deadline))) {
      continue;
    }
    return false;
  }
  return true;
}

ssize_t Conn::read_some(void* buf, size_t n, int timeout_ms) {
  if (!wait_fd(fd_.get(), POLLIN, timeout_ms)) {
    return -ETIMEDOUT;
  }
  const ssize_t r = ::recv(fd_.get(), buf, n, 0);
  return r >= 0 ? r : -errno;
}

std::optional<std::string> Conn::read_to_eof(int timeout_ms, size_t limit) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string out;
  char buf[65536];
  while (out.size() < limit) {
    const ssize_t r = read_some(buf, sizeof(buf), remaining_ms(deadline));
    if (r == 0) {
      return out;
    }
    if (r < 0) {
      if (r == -EAGAIN) {
        continue;
      }
      return std::nullopt;
    }
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

std::optional<std::string> Conn::read_exact(size_t n, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    const ssize_t r = read_some(buf, std::min(sizeof(buf), n - out.size()), remaining_ms(deadline));
    if (r == -EAGAIN) {
      continue;
    }
    if (r <= 0) {
      return std::nullopt;
    }
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

void Conn::shutdown_write() {
  ::shutdown(fd_.get(), SHUT_WR);
}

// ---- many echo clients -----------------------------------------------------------------

EchoResult run_echo_clients(const std::string& host, uint16_t port,
                            const std::vector<uint64_t>& sizes, uint64_t seed, int timeout_ms,
                            const std::vector<std::string>& sources) {
  struct Client {
    UniqueFd fd;
    uint64_t size = 0;
    uint64_t sent = 0;
    uint64_t received = 0;
    bool write_done = false;
    bool finished = false;
  };
  EchoResult result;
  auto fail = [&](Client& c, const std::string& why) {
    if (result.first_error.empty()) {
      result.first_error = why;
    }
    ++result.failed;
    c.finished = true;
    c.fd.reset();
  };
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  std::vector<Client> clients(sizes.size());
  socklen_t len;
  auto address = make_address(host, port, len);
  size_t open = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Client& c = clients[i];
    c.size = sizes[i];
    c.fd = UniqueFd(::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sources.empty()) {
      socklen_t source_len;
      auto local = make_address(sources[i % sources.size()], 0, source_len);
      if (::bind(c.fd.get(), reinterpret_cast<sockaddr*>(&local), source_len) != 0) {
        fail(c, "bind: " + std::string(strerror(errno)));
        continue;
      }
    }
    if (::connect(c.fd.get(), reinterpret_cast<sockaddr*>(&address), len) != 0 &&
        errno != EINPROGRESS) {
      fail(c, "connect: " + std::string(strerror(errno)));
      continue;
    }
    epoll_event e{.events = EPOLLIN | EPOLLOUT, .data = {.u64 = i}};
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, c.fd.get(), &e);
    ++open;
  }
  std::vector<uint8_t> out(1 << 16);
  std::vector<uint8_t> in(1 << 16);
  std::vector<uint8_t> expected(1 << 16);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (open > 0 && Clock::now() < deadline) {
    epoll_event events[256];
    const int n = ::epoll_wait(ep.get(), events, 256, 100);
    for (int k = 0; k < n; ++k) {
      const size_t i = events[k].data.u64;
      Client& c = clients[i];
      if (c.finished) {
        continue;
      }
      const uint64_t stream = seed + i;
      if ((events[k].events & EPOLLOUT) && !c.write_done) {
        while (c.sent < c.size) {
          const size_t chunk = static_cast<size_t>(std::min<uint64_t>(out.size(), c.size - c.sent));
          fill_stream(stream, c.sent, out.data(), chunk);
          const ssize_t w = ::send(c.fd.get(), out.data(), chunk, MSG_NOSIGNAL);
          if (w > 0) {
            c.sent += static_cast<uint64_t>(w);
            continue;
          }
          if (w < 0 && errno != EAGAIN) {
            fail(c, "send: " + std::string(strerror(errno)));
          }
          break;
        }
        if (!c.finished && c.sent == c.size) {
          ::shutdown(c.fd.get(), SHUT_WR);
          c.write_done = true;
          epoll_event e{.events = EPOLLIN, .data = {.u64 = i}};
          ::epoll_ctl(ep.get(), EPOLL_CTL_MOD, c.fd.get(), &e);
        }
      }
      if (c.finished) {
        --open;
        continue;
      }
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        while (true) {
          const ssize_t r = ::recv(c.fd.get(), in.data(), in.size(), MSG_DONTWAIT);
          if (r > 0) {
            const auto got = static_cast<size_t>(r);
            if (c.received + got > c.size) {
              fail(c, "more bytes than sent on connection " + std::to_string(i));
              break;
            }
            fill_stream(stream, c.received, expected.data(), got);
            if (std::memcmp(in.data(), expected.data(), got) != 0) {
              fail(c, "corrupted bytes on connection " + std::to_string(i) + " at offset " +
                          std::to_string(c.received));
              break;
            }
            c.received += got;
            result.bytes += got;
            continue;
          }
          if (r == 0) {
            if (c.received == c.size && c.write_done) {
              ++result.completed;
              c.finished = true;
              c.fd.reset();
            } else {
              fail(c, "early EOF on connection " + std::to_string(i) + " after " +
                          std::to_string(c.received) + " of " + std::to_string(c.size));
            }
            break;
          }
          if (errno != EAGAIN) {
            fail(c,
                 "recv: " + std::string(strerror(errno)) + " on connection " + std::to_string(i));
          }
          break;
        }
        if (c.finished) {
          --open;
        }
      }
    }
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    Client& c = clients[i];
    if (!c.finished) {
      fail(c, "timed out: connection " + std::to_string(i) + " of " + std::to_string(c.size) +
                  " bytes sent " + std::to_string(c.sent) + ", received " +
                  std::to_string(c.received));
    }
  }
  return result;
}

std::string proxy_config(uint16_t listen_port, const std::vector<const Backend*>& backends,
                         const std::string& vip_extra, const std::string& daemon_extra,
                         const std::vector<uint32_t>& weights) {
  std::ostringstream out;
  out << "[daemon]\ndrain_timeout_ms = 5000\n" << daemon_extra << "\n";
  if (daemon_extra.find("workers") == std::string::npos) {
    out << "workers = 2\n";
  }
  out << "[[vip]]\nname = \"test\"\nlisten = \"127.0.0.1:" << listen_port << "\"\n"
      << vip_extra << "\n";
  for (size_t i = 0; i < backends.size(); ++i) {
    out << "[[vip.backend]]\nname = \"" << backends[i]->name() << "\"\naddress = \""
        << backends[i]->address() << "\"\nweight = " << (weights.empty() ? 1 : weights[i]) << "\n";
  }
  return out.str();
}

}  // namespace ringlb::test
