// PipePool: a worker's spare pipes. A connection takes a pipe per direction when it
// first needs one and gives it back at close; an empty pipe returned is kept (up to
// kMaxPooledPipes) for the next connection, which saves the pipe2 and F_SETPIPE_SZ
// calls. One thread, no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "connection.h"
#include "ringlb/proxy/stats.h"

namespace ringlb::proxy {

class PipePool {
 public:
  static constexpr size_t kMaxPooledPipes = 256;  // empty pipes kept for reuse

  // Pipes it makes get F_SETPIPE_SZ `pipe_size`; each one made counts in `created`.
  PipePool(uint32_t pipe_size, Counter& created) : pipe_size_(pipe_size), created_(created) {}
  ~PipePool() { release_pooled_pipes(); }
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // Fills `pipe` with a pooled pipe or a new one; false when none can be made (out of
  // descriptors).
  bool get_pipe(Pipe& pipe);
  // Takes `pipe` back (when it holds one) and leaves it empty. `empty`: no byte is left
  // in it, so that another connection may have it.
  void put_pipe(Pipe& pipe, bool empty);
  // Closes every pooled pipe (descriptors ran out, or the worker is idle).
  void release_pooled_pipes();

 private:
  uint32_t pipe_size_;
  Counter& created_;
  std::vector<Pipe> pool_;
};

}  // namespace ringlb::proxy
