// ringlbd's Prometheus endpoint: `[daemon] metrics_listen` served over HTTP.
//
//   GET  /metrics   200, the control tree's `metrics` file (the Prometheus text format,
//                   Content-Type: text/plain; version=0.0.4; charset=utf-8)
//   HEAD /metrics   the same headers, no body
//   other paths     404
//   other methods   405 (Allow: GET, HEAD); a request line that is no HTTP: 400
//
// Off the workers' path: its own accept thread and a small pool of threads (cpp-httplib,
// Debian's libcpp-httplib-dev), started after the capabilities are dropped. Bounded:
//   - `threads` exchanges run at once; at most `queued` accepted connections wait for a
//     thread, and beyond that the accept thread stops accepting (the kernel's backlog
//     holds the rest), so a flood of connections cannot take descriptors the workers
//     need;
//   - one request per connection (Connection: close), and the whole exchange (request
//     read, response written) has `deadline`: a client that trickles its request a byte
//     at a time is cut off then, not after one read timeout per byte;
//   - at most 16 KiB are read from a connection, and no request body beyond 4 KiB (GET
//     and HEAD have none).
// The listening socket has SO_REUSEADDR only, never SO_REUSEPORT (cpp-httplib's
// default): binding an address another socket holds (another ringlbd, a VIP) fails
// instead of sharing its connections.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "ringlb/model/address.h"
#include "ringlb/result.h"

namespace ringlb::daemon {

struct MetricsHttpOptions {
  SocketAddress listen;  // port 0: any free port (tests; address() tells which)
  size_t threads = 2;
  size_t queued = 8;
  std::chrono::milliseconds deadline{5000};
};

class MetricsHttp {
 public:
  // The body of GET /metrics; called from the server's threads, so it must be safe to
  // call from several threads at once (ControlTree::read is). An error is a 500.
  using Render = std::function<Result<std::string>()>;
  // Where it reports trouble after start (accepting failed and it listens again).
  using Log = std::function<void(const std::string&)>;

  MetricsHttp();   // serves nothing until start()
  ~MetricsHttp();  // stop()
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  // Binds and listens on `options.listen`, then serves from its own threads. Fails,
  // naming the address and the errno, when it cannot bind.
  Result<void> start(const MetricsHttpOptions& options, Render render, Log log);

  // The address it listens on (with the port the kernel chose for port 0).
  const SocketAddress& address() const { return address_; }

  // Stops accepting, closes the connections still waiting, lets the exchanges in
  // progress end (each within its deadline, cut short to about 0.2 s), and joins every
  // thread. Idempotent.
  void stop();

  class Server;  // metrics_http.cpp

 private:
  std::unique_ptr<Server> server_;
  SocketAddress address_;
};

}  // namespace ringlb::daemon
