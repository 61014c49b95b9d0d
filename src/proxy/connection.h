// Connection: one client connection of a worker, from accept to close, and the state of
// its two forwarding directions (ringlb/proxy/worker.h explains the pump they serve).
// Private to the worker's files.
#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>

#include "ringlb/policy/policy.h"
#include "ringlb/proxy/runtime.h"

namespace ringlb::proxy {

// Marks the end of the free-slot list (ConnectionSlab).
inline constexpr uint32_t kNoSlot = 0xffffffffu;

enum class Phase : uint8_t { free, connecting, established };
enum class Side : uint8_t { client, backend };

struct Pipe {
  int read = -1;
  int write = -1;
};

struct Direction {
  Pipe pipe;
  uint32_t in_pipe = 0;        // bytes spliced in and not yet out
  bool eof = false;            // the source said EOF
  bool shut = false;           // EOF forwarded: shutdown(destination, SHUT_WR) done
  bool pollout_armed = false;  // waiting for the destination to become writable
  bool bulk = false;           // a read filled the copy buffer or half a pipe
  bool source_hup = false;     // a poll saw RDHUP/HUP/ERR on the source: EOF or error
                               // may be pending behind the data
};

struct Connection {
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
  const Backend* last_tried = nullptr;  // the last backend whose connect failed
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
  uint64_t connected_ns = 0;    // 0: never connected
  uint64_t shutdown_epoch = 0;  // the backend's epoch when connected
  uint64_t last_activity_ms = 0;
  uint64_t age_deadline_ms = 0;  // 0: none
  uint64_t age_give_up_ms = 0;   // past the age limit: reset if not quiet by then
  uint64_t bytes_in = 0;         // not yet added to the backend's counters
  uint64_t bytes_out = 0;
  bool client_spoke_last = false;  // the last bytes moved went client -> backend
  // For the connection log: the bytes moved each way, and whose FIN came first.
  uint64_t total_in = 0;
  uint64_t total_out = 0;
  bool backend_fin_first = false;
};

}  // namespace ringlb::proxy
