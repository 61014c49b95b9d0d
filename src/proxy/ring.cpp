#include "ringlb/proxy/ring.h"

#include <sys/utsname.h>

#include <cstdio>
#include <cstring>

namespace ringlb::proxy {

Ring::~Ring() {
  if (initialized_) {
    io_uring_queue_exit(&ring_);
  }
}

Result<void> Ring::init(unsigned entries) {
  struct Attempt {
    unsigned flags;
    const char* description;
  };
  // SINGLE_ISSUER: only the worker thread submits, which lets the kernel skip locking.
  // DEFER_TASKRUN: completions run when the worker asks for them (in io_uring_enter),
  // not as interrupting task work, so a batch of CQEs is handled together.
  // COOP_TASKRUN: the fallback that also avoids forced interruptions.
  // A large CQ (CQSIZE) absorbs bursts of multishot completions without overflow.
  const Attempt attempts[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN"},
      {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
      {0, "none"},
  };
  int last_error = 0;
  for (const auto& attempt : attempts) {
    io_uring_params params{};
    params.flags = attempt.flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = entries * 4;
    const int ret = io_uring_queue_init_params(entries, &ring_, &params);
    if (ret == 0) {
      initialized_ = true;
      flags_description_ = attempt.description;
      return {};
    }
    last_error = -ret;
    if (ret != -EINVAL) {
      break;
    }
  }
  return system_error("io_uring_queue_init", last_error);
}

io_uring_sqe* Ring::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

namespace {

bool kernel_at_least(int major, int minor) {
  utsname u;
  if (uname(&u) != 0) {
    return false;
  }
  int kmajor = 0;
  int kminor = 0;
  if (std::sscanf(u.release, "%d.%d", &kmajor, &kminor) != 2) {
    return false;
  }
  return kmajor > major || (kmajor == major && kminor >= minor);
}

}  // namespace

Result<void> probe_io_uring() {
  io_uring_probe* probe = io_uring_get_probe();
  if (probe == nullptr) {
    return Error{
        "io_uring is not available (needs Linux 5.19 or later, and io_uring not "
        "disabled by kernel.io_uring_disabled)"};
  }
  struct Needed {
    int op;
    const char* name;
    const char* kernel;
  };
  const Needed needed[] = {
      {IORING_OP_ACCEPT, "IORING_OP_ACCEPT", "5.5"},
      {IORING_OP_CONNECT, "IORING_OP_CONNECT", "5.5"},
      {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD", "5.1"},
      {IORING_OP_LINK_TIMEOUT, "IORING_OP_LINK_TIMEOUT", "5.5"},
      {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL", "5.5"},
      {IORING_OP_CLOSE, "IORING_OP_CLOSE", "5.6"},
  };
  std::string missing;
  for (const auto& n : needed) {
    if (!io_uring_opcode_supported(probe, n.op)) {
      missing += std::string(missing.empty() ? "" : ", ") + n.name + " (Linux " + n.kernel + ")";
    }
  }
  io_uring_free_probe(probe);
  if (!missing.empty()) {
    return Error{"the kernel's io_uring lacks " + missing};
  }
  // Multishot accept (5.19) and multishot poll (5.13) have no opcode of their own to
  // probe. (The worker's wait timeout is an io_uring_enter argument, not a TIMEOUT op.)
  if (!kernel_at_least(5, 19)) {
    return Error{"multishot accept needs Linux 5.19 or later"};
  }
  return {};
}

}  // namespace ringlb::proxy
