// The per-connection log ([daemon] access_log): one record per closed client
// connection, handed by its worker to the log thread (src/daemon/access_log.h formats
// and writes them) through the worker's own ring.
//
// The worker never waits for the log: AccessRing is single-producer single-consumer
// and fixed-size; a record that finds it full is dropped and counted (the worker
// counter log_dropped), and the log thread says so in the log itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "ringlb/model/address.h"
#include "ringlb/model/model.h"

namespace ringlb::proxy {

// Why a connection ended. How the peers saw it (FINs or resets) is AccessRecord::reset.
enum class End : uint8_t {
  client_fin,        // both sides ended with FIN, the client first
  backend_fin,       // both sides ended with FIN, the backend first
  client_reset,      // the client's socket failed (reset, error): the backend is reset
  backend_reset,     // the backend's socket failed: the client is reset
  idle,              // idle_timeout_ms without traffic
  age,               // max_connection_age_ms (reset when no quiet moment came in time)
  drain,             // still open when ringlbd's drain deadline passed
  vip_removed,       // its VIP was removed and the grace time passed
  backend_shutdown,  // the backend's shutdown control
  no_backend,        // no backend was eligible at accept
  connect_failed,    // every backend tried refused or timed out (connect_retries)
  local_error,       // ringlbd could not go on (no pipe, PROXY header not sent)
  shutdown,          // the worker stopped with the connection open
  overload,          // refused at accept: the worker was at max_connections (reset)
};
inline constexpr size_t kEndCount = static_cast<size_t>(End::overload) + 1;

std::string_view end_name(End end);

// One closed connection. Plain data, copied into and out of a ring.
struct AccessRecord {
  uint64_t closed_unix_ns = 0;  // CLOCK_REALTIME at the close
  uint64_t duration_us = 0;     // accept to close
  int64_t connect_us = -1;      // accept to backend connected, retries included; -1: never
  uint64_t bytes_client_to_backend = 0;
  uint64_t bytes_backend_to_client = 0;
  SocketAddress client{};
  SocketAddress backend_address{};  // port 0: no backend was chosen
  uint16_t worker = 0;
  uint8_t retries = 0;  // backends tried after the first
  End end = End::client_fin;
  bool reset = false;  // ringlbd reset the peers (SO_LINGER 0) instead of FINs
  char vip[kMaxNameLength + 1] = {};
  char backend[kMaxNameLength + 1] = {};  // "" when none was chosen
};

// Fixed-size single-producer (a worker) single-consumer (the log thread) ring.
class AccessRing {
 public:
  // `capacity` is rounded up to a power of two (at least 2).
  explicit AccessRing(size_t capacity);

  // Worker: false (nothing written) when the ring is full.
  bool push(const AccessRecord& record);
  // Log thread: up to `max` records into `out`; returns how many.
  size_t pop(AccessRecord* out, size_t max);

  size_t capacity() const { return mask_ + 1; }

 private:
  size_t mask_;
  std::unique_ptr<AccessRecord[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};  // next to write (worker)
  alignas(64) std::atomic<uint64_t> tail_{0};  // next to read (log thread)
};

// What a worker needs to log: its ring and the sample rate (1 in `sample_every`
// connections is logged; 1: every one). No ring: no log.
struct AccessLogSink {
  AccessRing* ring = nullptr;
  uint32_t sample_every = 1;
};

}  // namespace ringlb::proxy
