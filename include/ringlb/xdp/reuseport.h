// Steer mode's socket half (bpf/reuseport.bpf.c): ringlb_reuseport picks, among the
// listeners of one SO_REUSEPORT group, the one of the worker that owns the client:
// ringlb_reduce(hash(client), steer_workers), the worker whose CPU the XDP program steers
// the client's packets to. A socket array holds one reuseport group, so each group gets
// its own instance. Nothing is pinned: an instance lives as long as its owner.
#pragma once

#include <cstdint>
#include <memory>

#include "ringlb/abi/hash.h"
#include "ringlb/result.h"
#include "ringlb/xdp/program.h"

namespace ringlb::xdp {

class ReuseportProgram {
 public:
  // Loads an instance for `steer_workers` workers (1..RINGLB_MAX_WORKERS) that hashes
  // clients with `hash_key`, as the XDP program given the same does.
  static Result<ReuseportProgram> load(uint32_t steer_workers, const ringlb_hash_key& hash_key);

  // Puts `listener_fd` in the socket array as worker `worker`'s listener. Errors name the
  // socket array ("worker socket array: ...").
  Result<void> set_worker_socket(uint32_t worker, int listener_fd) const;

  // Attaches the program to the reuseport group of `listener_fd`
  // (SO_ATTACH_REUSEPORT_EBPF). Errors name the option.
  Result<void> attach(int listener_fd) const;

  int fd() const;          // the program
  int sockets_fd() const;  // the socket array (worker index -> listener)

 private:
  ReuseportProgram() = default;
  std::unique_ptr<ringlb_reuseport, SkeletonDeleter> skel_;
};

}  // namespace ringlb::xdp
