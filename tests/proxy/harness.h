// Test harness for ringlbd: the daemon as a child process, backends as in-process
// epoll servers, and clients that check every byte. Everything is on 127.0.0.1/::1 and
// every process and socket is released by RAII, also when a test fails.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ringlb/fd.h"

namespace ringlb::test {

// The byte at `offset` of the deterministic stream `seed`: both ends compute it, so
// nothing large is ever stored to compare.
inline uint8_t stream_byte(uint64_t seed, uint64_t offset) {
  uint64_t z = seed ^ ((offset >> 3) * 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<uint8_t>(z >> (8 * (offset & 7)));
}
void fill_stream(uint64_t seed, uint64_t offset, uint8_t* out, size_t n);

// A port nobody listens on right now (bound to port 0, then released).
uint16_t free_port(bool v6 = false);

// How a backend treats a connection.
enum class BackendMode {
  echo,             // sends back every byte, closes after the client's EOF
  reply_after_eof,  // reads until EOF, then sends "<name>:<bytes read>" and closes
  name,             // sends "<name>\n" at once, then echoes like `echo`
  proxy_v2,         // reads a PROXY v2 header, replies with the source it names, then echoes
};

// A TCP server on loopback with its own epoll thread.
class Backend {
 public:
  Backend(std::string name, BackendMode mode, bool v6 = false);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const std::string& name() const { return name_; }
  uint16_t port() const { return port_; }
  std::string address() const;  // "127.0.0.1:port" or "[::1]:port"
  uint64_t connections() const { return connections_.load(); }
  // Closes every open connection with a reset (a backend dying mid-transfer).
  void reset_all();

 private:
  void loop();
  std::string name_;
  BackendMode mode_;
  bool v6_;
  uint16_t port_ = 0;
  UniqueFd listener_;
  UniqueFd wake_;  // eventfd: stop or reset_all
  std::atomic<bool> stop_{false};
  std::atomic<bool> reset_{false};
  std::atomic<uint64_t> connections_{0};
  std::thread thread_;
};

// ringlbd running on a config written to a temp file.
class Ringlbd {
 public:
  // Starts ringlbd and waits until it serves (its listeners are bound).
  // `nofile_limit` > 0 sets RLIMIT_NOFILE (soft and hard) of the daemon.
  // `control_dir`: another daemon's (for a hand-over); it is left alone at the end.
  Ringlbd(const std::string& config_text, std::vector<std::string> extra_args = {},
          int nofile_limit = 0, const std::string& control_dir = "");
  ~Ringlbd();
  Ringlbd(const Ringlbd&) = delete;
  Ringlbd& operator=(const Ringlbd&) = delete;

  pid_t pid() const { return pid_; }
  // Rewrites the config file (for SIGHUP reloads).
  void write_config(const std::string& text);
  void signal(int sig) const;
  // Waits for exit; returns the exit status, or -1 on timeout.
  int wait_exit(int timeout_ms);
  // Counters via SIGUSR1 and the stats file.
  std::map<std::string, uint64_t> stats();
  uint64_t stat(const std::string& name) { return stats()[name]; }
  // Sum of worker.<n>.<name> over workers.
  uint64_t worker_total(const std::string& name);
  std::string log() const;
  const std::string& control_dir() const { return control_dir_; }
  const std::string& config_path() const { return config_path_; }
  // Open descriptors of the daemon (/proc/<pid>/fd).
  size_t open_fds() const;

 private:
  [[noreturn]] void abandon_start(const std::string& why);

  std::string dir_;
  std::string config_path_;
  std::string stats_path_;
  std::string log_path_;
  std::string control_dir_;
  bool own_control_dir_ = true;
  pid_t pid_ = -1;
};

// A blocking client connection with timeouts.
class Conn {
 public:
  // `source`: local address to bind first (any 127.0.0.0/8 address works on loopback).
  static Conn open(const std::string& host, uint16_t port, int timeout_ms = 3000,
                   const std::string& source = "");
  bool ok() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  bool send_bytes(const void* data, size_t n, int timeout_ms = 5000);
  bool send_all(const std::string& s, int timeout_ms = 5000) {
    return send_bytes(s.data(), s.size(), timeout_ms);
  }
  // Reads until EOF (or `limit` bytes); returns what was read, nullopt on error/timeout.
  std::optional<std::string> read_to_eof(int timeout_ms = 5000, size_t limit = 1 << 20);
  // Reads exactly n bytes.
  std::optional<std::string> read_exact(size_t n, int timeout_ms = 5000);
  void shutdown_write();
  // What the next read returns: bytes, 0 for EOF, or -errno (e.g. -ECONNRESET).
  ssize_t read_some(void* buf, size_t n, int timeout_ms);

 private:
  UniqueFd fd_;
};

// A loopback listener that never calls accept(). With a roomy backlog the kernel
// completes handshakes: a backend that "accepts and never answers". With
// `black_hole_syns` its backlog is filled for good, so further SYNs are dropped and a
// connect to it neither succeeds nor fails until it times out.
class SilentListener {
 public:
  explicit SilentListener(bool black_hole_syns);
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  uint16_t port_;
  UniqueFd listener_;
  std::vector<Conn> fillers_;
};

// Runs `connections` echo clients at once over epoll: connection i sends sizes[i]
// bytes of stream seed+i, half-closes, and must read the same bytes back then EOF.
struct EchoResult {
  size_t completed = 0;
  size_t failed = 0;
  uint64_t bytes = 0;
  std::string first_error;
};
// `sources`: local addresses to bind, client i the (i % size)-th (default: the kernel's).
EchoResult run_echo_clients(const std::string& host, uint16_t port,
                            const std::vector<uint64_t>& sizes, uint64_t seed, int timeout_ms,
                            const std::vector<std::string>& sources = {});

std::string proxy_config(uint16_t listen_port, const std::vector<const Backend*>& backends,
                         const std::string& vip_extra = "", const std::string& daemon_extra = "",
                         const std::vector<uint32_t>& weights = {});

// Raises RLIMIT_NOFILE to the hard limit for tests with many sockets.
void raise_fd_limit();

}  // namespace ringlb::test
