// Ring: one worker's io_uring, set up with the flags the kernel supports, and the
// user_data encoding every SQE carries.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>

#include "ringlb/result.h"

namespace ringlb::proxy {

// What an SQE was for; dispatched by WorkerLoop::handle_cqe (src/proxy/worker.cpp).
enum class Op : uint8_t {
  ignore = 0,       // cancellations and other completions nobody waits for
  accept = 1,       // multishot accept on a listener slot
  connect,          // backend connect of a connection slot
  connect_timeout,  // its linked timeout
  poll_client,      // multishot POLLIN on the client socket
  poll_backend,     // multishot POLLIN on the backend socket
  pollout_client,   // one-shot POLLOUT on the client socket
  pollout_backend,  // one-shot POLLOUT on the backend socket
};

// user_data = op (8 bits) | generation (24 bits) | slot index (32 bits). The generation
// changes each time a slot is reused, so a late completion for an old occupant of the
// slot is recognised and dropped.
//
// The generation bits user_data carries. Slots and accept arms count generations in 32
// bits; a completion's generation is compared with theirs through this mask only.
inline constexpr uint32_t kGenerationMask = 0xffffff;

struct UserData {
  Op op;
  uint32_t generation;
  uint32_t index;

  uint64_t encode() const {
    return (static_cast<uint64_t>(op) << 56) |
           (static_cast<uint64_t>(generation & kGenerationMask) << 32) | index;
  }
  static UserData decode(uint64_t v) {
    return {static_cast<Op>(v >> 56), static_cast<uint32_t>((v >> 32) & kGenerationMask),
            static_cast<uint32_t>(v)};
  }
};

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // Sets up a ring of `entries` SQEs. Tries SINGLE_ISSUER | DEFER_TASKRUN first and
  // falls back to COOP_TASKRUN, then to no flags, on kernels without them; fails, naming
  // the feature and the kernel version it needs, when an operation ringlbd relies on
  // is missing. Call from the thread that will use the ring.
  Result<void> init(unsigned entries);

  // A free SQE; submits what is queued when the SQ is full instead of failing.
  io_uring_sqe* get_sqe();
  io_uring* get() { return &ring_; }
  // Names of the setup flags in use, for the start-up log.
  const std::string& flags_description() const { return flags_description_; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
  std::string flags_description_;
};

// Checks, once per process, that the kernel has every io_uring operation and feature
// ringlbd uses. The error names what is missing and the kernel version that added it.
Result<void> probe_io_uring();

}  // namespace ringlb::proxy
