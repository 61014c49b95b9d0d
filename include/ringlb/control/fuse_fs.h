// ControlFs: the ControlTree mounted with libfuse3 at the daemon's control_dir.
//
// Only root can use it: the mount has no allow_other, directories are 0700 and files
// 0600/0400/0200. The mount goes away with the daemon even when the daemon is killed:
// a small guardian process, forked before the workers start, waits for the daemon's end
// and detaches the mount; and a mount left behind by an older crash (ENOTCONN) is
// detached before mounting again.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "ringlb/control/tree.h"
#include "ringlb/fd.h"
#include "ringlb/result.h"

struct fuse;

namespace ringlb::control {

class ControlFs {
 public:
  // Mounts `tree` at `dir` (created 0700 if missing) and serves it on its own threads.
  static Result<std::unique_ptr<ControlFs>> mount(ControlTree& tree, const std::string& dir);
  ~ControlFs();  // unmounts and stops serving
  ControlFs(const ControlFs&) = delete;
  ControlFs& operator=(const ControlFs&) = delete;

 private:
  ControlFs() = default;
  std::string dir_;
  fuse* fuse_ = nullptr;
  std::thread loop_;
  std::atomic<bool> loop_running_{false};  // fuse_loop_mt has not returned
  UniqueFd guardian_pipe_;                 // closing it (or dying) tells the guardian to unmount
  pid_t guardian_ = -1;
};

}  // namespace ringlb::control
