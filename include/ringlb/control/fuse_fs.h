// ControlFs: the ControlTree mounted with libfuse3 at the daemon's control_dir.
//
// Only root can change it, whichever user ringlbd runs as: the mount has allow_other
// and default_permissions, so the kernel checks every access against the attributes
// the tree reports: owner root, directories 0700 and files 0600/0400/0200, or, with a
// readers' group (config control_group), group-readable (directories 0750, readable
// files 0440 or 0640): its members read counters and settings, never write. Others
// open nothing. The mount goes away with the daemon even when the daemon is killed: a
// small guardian process, forked before the workers start, waits for the daemon's end
// and detaches the mount; and a mount left behind by an older crash (ENOTCONN) is
// detached before mounting again.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
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
  // `readers`: the gid of the group that may read it, or nullopt for root alone.
  static Result<std::unique_ptr<ControlFs>> mount(ControlTree& tree, const std::string& dir,
                                                  std::optional<gid_t> readers = std::nullopt);
  ~ControlFs();  // unmounts and stops serving
  ControlFs(const ControlFs&) = delete;
  ControlFs& operator=(const ControlFs&) = delete;

 public:
  struct Served;  // what the callbacks see (fuse_fs.cpp)

 private:
  ControlFs() = default;
  std::string dir_;
  std::unique_ptr<Served> served_;
  fuse* fuse_ = nullptr;
  std::thread loop_;
  std::atomic<bool> loop_running_{false};  // fuse_loop_mt has not returned
  UniqueFd guardian_pipe_;                 // closing it (or dying) tells the guardian to unmount
  pid_t guardian_ = -1;
};

}  // namespace ringlb::control
