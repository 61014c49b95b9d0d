#include "daemon/metrics_http.h"

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace ringlb::daemon {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextType = "text/plain; charset=utf-8";
// The most request body read (GET and HEAD have none; this bounds a client that sends
// one anyway), and the most bytes read from one connection in all: cpp-httplib grows a
// request line or header line without limit until its newline.
constexpr size_t kMaxBody = 4096;
constexpr size_t kMaxRequest = 16384;
// How often a wait for a slow client looks whether the server is stopping.
constexpr std::chrono::milliseconds kStopCheck{200};

// One connection under one deadline for the whole exchange. cpp-httplib's own socket
// stream waits up to its read timeout before each read, so a client that trickles a
// byte now and then would hold a thread for as long as it likes; here every wait ends
// at the deadline (or soon after a stop), and reading ends after kMaxRequest bytes.
// Reads are buffered: cpp-httplib reads the request line and headers a byte at a time.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int fd, Clock::time_point deadline, const std::atomic<bool>& stopping)
      : fd_(fd), deadline_(deadline), stopping_(stopping) {}

  bool is_readable() const override { return next_ < end_ || wait(POLLIN); }
  bool is_writable() const override { return wait(POLLOUT); }

  ssize_t read(char* out, size_t size) override {
    if (next_ == end_) {
      if (received_ >= kMaxRequest || !wait(POLLIN)) {
        return -1;
      }
      const ssize_t got = ::recv(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (got <= 0) {
        return got;
      }
      next_ = 0;
      end_ = static_cast<size_t>(got);
      received_ += end_;
    }
    const size_t n = std::min(size, end_ - next_);
    std::memcpy(out, buffer_.data() + next_, n);
    next_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* data, size_t size) override {
    if (!wait(POLLOUT)) {
      return -1;
    }
    return ::send(fd_, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  // True once `events` (or an error, which the next call reports) is ready; false at the
  // deadline, on a stop, or on a poll error.
  bool wait(short events) const {
    while (!stopping_.load(std::memory_order_relaxed)) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) {
        return false;
      }
      pollfd p{.fd = fd_, .events = events, .revents = 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::min(left, kStopCheck).count()));
      if (ready > 0) {
        return true;
      }
      if (ready < 0 && errno != EINTR) {
        return false;
      }
    }
    return false;
  }

  void address(int (*name)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage storage{};
    socklen_t length = sizeof(storage);
    auto* sa = reinterpret_cast<sockaddr*>(&storage);
    if (name(fd_, sa, &length) == 0) {
      if (auto parsed = SocketAddress::from_sockaddr(sa, length)) {
        ip = parsed->ip.to_string();
        port = parsed->port;
      }
    }
  }

  int fd_;
  Clock::time_point deadline_;
  const std::atomic<bool>& stopping_;
  std::array<char, 4096> buffer_{};
  size_t next_ = 0;
  size_t end_ = 0;
  size_t received_ = 0;
};

// cpp-httplib's task queue with `threads` threads and at most `queued` connections
// waiting. A full queue blocks enqueue(), which the accept thread calls: accepting
// pauses until a thread is free, and further clients wait in the kernel's backlog.
// (cpp-httplib 0.11's own ThreadPool queues without limit.)
class BoundedQueue final : public httplib::TaskQueue {
 public:
  BoundedQueue(size_t threads, size_t queued) : limit_(std::max<size_t>(queued, 1)) {
    for (size_t i = 0; i < std::max<size_t>(threads, 1); ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ~BoundedQueue() override { shutdown(); }

  void enqueue(std::function<void()> job) override {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [this] { return jobs_.size() < limit_ || stopping_; });
    jobs_.push_back(std::move(job));
    ready_.notify_one();
  }

  // Runs what is queued (each job closes its connection), then joins the threads.
  // Called by the accept thread once it stops accepting.
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (auto& thread : threads_) {
      if (thread.joinable()) {
        thread.join();
      }
    }
  }

 private:
  void run() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return !jobs_.empty() || stopping_; });
        if (jobs_.empty()) {
          return;
        }
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      space_.notify_one();
      job();
    }
  }

  const size_t limit_;
  std::mutex mutex_;
  std::condition_variable ready_;  // a job was queued, or stopping
  std::condition_variable space_;  // a job was taken, or stopping
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

// cpp-httplib's server, each connection served by one request under one deadline, and
// its accept loop kept running until stop().
class MetricsHttp::Server final : public httplib::Server {
 public:
  Server(const MetricsHttpOptions& options, MetricsHttp::Log log)
      : deadline_(options.deadline), log_(std::move(log)) {}

  // Binds; false (errno set) when it cannot.
  bool bind(const SocketAddress& address) {
    const std::string host = address.ip.to_string();
    const int flags = AI_NUMERICHOST | AI_PASSIVE;  // an address, never a name lookup
    errno = 0;
    const int port = address.port == 0
                         ? bind_to_any_port(host, flags)
                         : (bind_to_port(host, address.port, flags) ? address.port : -1);
    bound_ = SocketAddress{.ip = address.ip, .port = static_cast<uint16_t>(std::max(port, 0))};
    return port > 0;
  }
  const SocketAddress& bound() const { return bound_; }

  // The listener thread: cpp-httplib's accept loop, until stop(). The loop also ends, and
  // closes the socket, when accept() fails with anything but EMFILE, EINTR or EAGAIN
  // (ENOMEM, ENOBUFS, a pending network error): then this binds again, once a second.
  void run() {
    while (true) {
      listen_after_bind();
      {
        std::lock_guard lock(socket_mutex_);
        svr_sock_ = INVALID_SOCKET;  // closed by the loop
        if (stopping) {
          return;
        }
      }
      log_("accepting on " + bound_.to_string() + " failed; listening again");
      for (bool bound = false; !bound;) {
        for (int i = 0; i < 10 && !stopping; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::lock_guard lock(socket_mutex_);
        if (stopping) {
          return;
        }
        bound = bind(bound_);
      }
    }
  }

  // Wakes the accept loop, which then closes its socket itself: closing it here, as
  // httplib::Server::stop() does, would race with the accept() in progress on it.
  void wake() {
    std::lock_guard lock(socket_mutex_);
    stopping = true;
    if (const socket_t fd = svr_sock_; fd != INVALID_SOCKET) {
      ::shutdown(fd, SHUT_RDWR);
    }
  }

  std::atomic<bool> stopping{false};
  std::thread listener;

 private:
  // cpp-httplib calls this (a virtual it declares private) on a pool thread for every
  // accepted connection; its own version serves keep-alive requests under per-read
  // timeouts only.
  bool process_and_close_socket(socket_t fd) override {
    bool served = false;
    if (!stopping.load()) {
      DeadlineStream stream(fd, Clock::now() + deadline_, stopping);
      bool closed = false;
      served = process_request(stream, /*close_connection=*/true, closed, nullptr);
    }
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    return served;
  }

  std::chrono::milliseconds deadline_;
  MetricsHttp::Log log_;
  SocketAddress bound_;
  std::mutex socket_mutex_;  // orders wake() against run()'s binds
};

namespace {

void add_routes(httplib::Server& server, MetricsHttp::Render render) {
  using httplib::Request;
  using httplib::Response;
  server.set_pre_routing_handler([](const Request& request, Response& response) {
    if (request.method == "GET" || request.method == "HEAD") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    response.status = 405;
    response.set_header("Allow", "GET, HEAD");
    response.set_content("method not allowed: ringlbd serves GET and HEAD only\n", kTextType);
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/metrics", [render = std::move(render)](const Request&, Response& response) {
    auto body = render();
    if (!body) {
      response.status = 500;
      response.set_content(body.error().message + "\n", kTextType);
      return;
    }
    response.body = std::move(*body);
    response.set_header("Content-Type", kContentType);
  });
  server.set_error_handler([](const Request&, Response& response) {
    if (response.status == 404 && response.body.empty()) {
      response.set_content("not found: ringlbd serves /metrics only\n", kTextType);
    }
  });
}

// SO_REUSEADDR (a restart binds again at once), and not SO_REUSEPORT, which
// cpp-httplib sets by default and which would let this socket share an address with
// another listener silently.
void reuse_address_only(socket_t fd) {
  const int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

MetricsHttp::MetricsHttp() = default;

MetricsHttp::~MetricsHttp() {
  stop();
}

Result<void> MetricsHttp::start(const MetricsHttpOptions& options, Render render, Log log) {
  stop();
  auto server = std::make_unique<Server>(options, std::move(log));
  add_routes(*server, std::move(render));
  server->set_socket_options(reuse_address_only);
  server->set_address_family(options.listen.ip.is_v4() ? AF_INET : AF_INET6);
  server->set_payload_max_length(kMaxBody);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options.deadline);
  server->set_read_timeout(std::max<time_t>(seconds.count(), 1));
  server->set_write_timeout(std::max<time_t>(seconds.count(), 1));
  const size_t threads = options.threads;
  const size_t queued = options.queued;
  // cpp-httplib takes the queue by pointer and deletes it when it stops listening.
  server->new_task_queue = [threads, queued]() -> httplib::TaskQueue* {
    return std::make_unique<BoundedQueue>(threads, queued).release();
  };
  if (!server->bind(options.listen)) {
    const int error = errno != 0 ? errno : EADDRNOTAVAIL;
    return system_error("cannot serve metrics on " + options.listen.to_string(), error);
  }
  address_ = server->bound();
  server->listener = std::thread([raw = server.get()] { raw->run(); });
  server_ = std::move(server);
  return {};
}

void MetricsHttp::stop() {
  if (!server_) {
    return;
  }
  server_->wake();  // the accept loop ends, the queue closes what waits in it
  server_->listener.join();
  server_.reset();
}

}  // namespace ringlb::daemon
