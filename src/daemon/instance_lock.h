// One ringlbd per control directory. A second daemon mounting its tree over the first's
// would stack two mounts on one path, and a write there would reach only one of them.
// The lock is a file, .ringlbd.lock, in control_dir itself, taken (flock) and filled with
// the pid before the control filesystem is mounted over the directory: the open
// descriptor keeps the lock while the mount hides the file. A second daemon finds either
// the mount (whose `pid` file names the first) or the lock (whose content does).
#pragma once

#include <string>

#include "ringlb/fd.h"
#include "ringlb/result.h"

namespace ringlb::daemon {

class InstanceLock {
 public:
  // Takes the lock of `control_dir` (created if missing). Fails with EBUSY, naming the
  // pid of the daemon that holds it, when another ringlbd serves that directory.
  static Result<InstanceLock> take(const std::string& control_dir);

  // The pid the daemon serving `control_dir` wrote: its tree's `pid` file, or, with no
  // tree mounted, the lock file under it; "" when neither names one.
  static std::string holder(const std::string& control_dir);

 private:
  InstanceLock() = default;
  UniqueFd fd_;
};

}  // namespace ringlb::daemon
