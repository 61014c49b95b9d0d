#include "pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

namespace ringlb::proxy {

bool PipePool::get_pipe(Pipe& pipe) {
  if (!pool_.empty()) {
    pipe = pool_.back();
    pool_.pop_back();
    return true;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return false;  // the pool is empty, so there is nothing to give back
  }
  // A larger pipe moves more per splice call; the kernel may refuse past
  // fs.pipe-max-size, and the default size still works.
  ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipe_size_));
  created_.add();
  pipe = Pipe{fds[0], fds[1]};
  return true;
}

void PipePool::release_pooled_pipes() {
  for (auto& p : pool_) {
    ::close(p.read);
    ::close(p.write);
  }
  pool_.clear();
}

void PipePool::put_pipe(Pipe& pipe, bool empty) {
  if (pipe.read < 0) {
    return;
  }
  // A pipe still holding bytes of a dead connection is never handed to another one.
  if (empty && pool_.size() < kMaxPooledPipes) {
    pool_.push_back(pipe);
  } else {
    ::close(pipe.read);
    ::close(pipe.write);
  }
  pipe = Pipe{};
}

}  // namespace ringlb::proxy
