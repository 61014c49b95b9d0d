#include "daemon/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

namespace ringlb::daemon {
namespace {

constexpr long kFuseSuperMagic = 0x65735546;

std::string first_line(const std::string& path) {
  std::string line;
  std::getline(std::ifstream(path), line);
  return line;
}

Error busy(const std::string& dir, const std::string& pid) {
  return Error{"control_dir " + dir + " is served by ringlbd pid " +
                   (pid.empty() ? std::string("(unknown)") : pid) +
                   "; one ringlbd per control_dir: stop it first, or give this one another "
                   "control_dir",
               EBUSY};
}

}  // namespace

std::string InstanceLock::holder(const std::string& control_dir) {
  std::string pid = first_line(control_dir + "/pid");
  return pid.empty() ? first_line(control_dir + "/.ringlbd.lock") : pid;
}

Result<InstanceLock> InstanceLock::take(const std::string& control_dir) {
  // A live control mount answers: its `pid` file names the daemon. A mount whose daemon
  // died answers ENOTCONN: it is detached, as ControlFs::mount would.
  struct statfs fs {};
  const int probed = ::statfs(control_dir.c_str(), &fs);
  if (probed == 0 && fs.f_type == kFuseSuperMagic) {
    return busy(control_dir, first_line(control_dir + "/pid"));
  }
  if (probed != 0 && errno == ENOTCONN) {
    ::umount2(control_dir.c_str(), MNT_DETACH);
  }
  std::error_code ec;
  std::filesystem::create_directories(control_dir, ec);
  if (ec) {
    return Error{"cannot create control_dir " + control_dir + ": " + ec.message(), ec.value()};
  }
  const std::string path = control_dir + "/.ringlbd.lock";
  InstanceLock lock;
  lock.fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock.fd_.valid()) {
    return system_error("cannot open the lock " + path, errno);
  }
  if (::flock(lock.fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return busy(control_dir, first_line(path));
    }
    return system_error("cannot lock " + path, errno);
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock.fd_.get(), 0) != 0 ||
      ::pwrite(lock.fd_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return system_error("cannot write " + path, errno);
  }
  return lock;
}

}  // namespace ringlb::daemon
