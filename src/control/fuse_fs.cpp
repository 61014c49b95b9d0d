#define FUSE_USE_VERSION 31
#include "ringlb/control/fuse_fs.h"

#include <fuse3/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <unordered_map>

namespace ringlb::control {

namespace {

// What one open file sees: the value rendered at open, so that a read in several chunks
// is consistent.
struct Handle {
  std::string content;
};

}  // namespace

// What the callbacks see (fuse private_data): the tree, and the handles open on it, by
// fuse_file_info::fh. They are owned here, not by the kernel's release: a reader that
// still has a file open when the mount is torn down never sends one.
struct ControlFs::Served {
  ControlTree* tree = nullptr;
  std::mutex mu;
  std::unordered_map<uint64_t, std::unique_ptr<Handle>> open;
};

namespace {

ControlFs::Served& served() {
  return *static_cast<ControlFs::Served*>(fuse_get_context()->private_data);
}

ControlTree& tree() {
  return *served().tree;
}

// Interrupts the loop thread's wait when the filesystem stops (see ~ControlFs).
constexpr int kWakeSignal = SIGUSR2;

// Every node shows the time the filesystem was mounted, as sysfs shows boot time.
timespec mount_time{};
// The group that may read the tree (config control_group); one mount per process.
std::optional<gid_t> readers_gid;
constexpr mode_t kRootMode = 0711;  // tools/systemd/ringlbd.service's RuntimeDirectoryMode

int fs_getattr(const char* path, struct stat* st, fuse_file_info*) {
  auto info = tree().stat(path);
  if (!info) {
    return -info.error().code;
  }
  std::memset(st, 0, sizeof(*st));
  // Root's, whoever serves it; the readers' group, when there is one, may read.
  st->st_uid = 0;
  st->st_gid = readers_gid.value_or(0);
  const mode_t group_read = readers_gid ? 0040 : 0;
  st->st_atim = st->st_mtim = st->st_ctim = mount_time;
  if (std::strcmp(path, "/") == 0) {
    // The mount point is the unit's RuntimeDirectory=, which systemd sets up again for
    // each command it starts (ExecReload= too): it leaves the directory alone only when
    // it already has the service's user, group and RuntimeDirectoryMode (0711), and
    // otherwise chowns the whole tree, which a control tree refuses. So the root shows
    // exactly that: the daemon's own uid and gid, 0711. Anyone may pass through it,
    // nobody but root and the daemon may list it, and what lies below keeps the modes
    // below.
    st->st_uid = ::geteuid();
    st->st_gid = ::getegid();
    st->st_mode = S_IFDIR | kRootMode;
    st->st_nlink = 2;
  } else if (info->kind == NodeKind::directory) {
    st->st_mode = S_IFDIR | 0700 | (readers_gid ? 0050 : 0);
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | (info->readable ? 0400 | group_read : 0) | (info->writable ? 0200 : 0);
    st->st_nlink = 1;
    st->st_size = 4096;  // sysfs does the same: the real size is known only on read
  }
  return 0;
}

int fs_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
               fuse_readdir_flags) {
  auto names = tree().list(path);
  if (!names) {
    return -names.error().code;
  }
  fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  for (const auto& name : *names) {
    fill(buf, name.c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  }
  return 0;
}

int fs_open(const char* path, fuse_file_info* fi) {
  auto info = tree().stat(path);
  if (!info) {
    return -info.error().code;
  }
  const int access = fi->flags & O_ACCMODE;
  if ((access != O_RDONLY && !info->writable) || (access != O_WRONLY && !info->readable)) {
    return -EACCES;
  }
  auto handle = std::make_unique<Handle>();
  if (access != O_WRONLY) {
    auto content = tree().read(path);
    if (!content) {
      return -content.error().code;
    }
    handle->content = std::move(*content);
  }
  fi->direct_io = 1;  // sizes are not known ahead: no page cache, reads reach us
  fi->fh = reinterpret_cast<uint64_t>(handle.get());
  std::lock_guard lock(served().mu);
  served().open.emplace(fi->fh, std::move(handle));
  return 0;
}

int fs_read(const char*, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  const auto* handle = reinterpret_cast<const Handle*>(fi->fh);
  if (offset < 0 || static_cast<size_t>(offset) >= handle->content.size()) {
    return 0;
  }
  const size_t n = std::min(size, handle->content.size() - static_cast<size_t>(offset));
  std::memcpy(buf, handle->content.data() + offset, n);
  return static_cast<int>(n);
}

int fs_write(const char* path, const char* buf, size_t size, off_t, fuse_file_info*) {
  auto done = tree().write(path, std::string_view(buf, size));
  if (!done) {
    return -done.error().code;
  }
  return static_cast<int>(size);
}

int fs_truncate(const char* path, off_t, fuse_file_info*) {
  auto info = tree().stat(path);
  if (!info) {
    return -info.error().code;
  }
  return info->writable ? 0 : -EACCES;  // `echo v > file` truncates first
}

int fs_release(const char*, fuse_file_info* fi) {
  std::lock_guard lock(served().mu);
  served().open.erase(fi->fh);
  return 0;
}

int fs_mkdir(const char* path, mode_t) {
  auto done = tree().make_directory(path);
  return done ? 0 : -done.error().code;
}

int fs_rmdir(const char* path) {
  auto done = tree().remove_directory(path);
  return done ? 0 : -done.error().code;
}

void* fs_init(fuse_conn_info*, fuse_config* config) {
  // Every lookup and attribute goes to the tree: backends come and go.
  config->entry_timeout = 0;
  config->attr_timeout = 0;
  config->negative_timeout = 0;
  config->direct_io = 1;
  return fuse_get_context()->private_data;
}

fuse_operations make_operations() {
  fuse_operations ops{};
  ops.init = fs_init;
  ops.getattr = fs_getattr;
  ops.readdir = fs_readdir;
  ops.open = fs_open;
  ops.read = fs_read;
  ops.write = fs_write;
  ops.truncate = fs_truncate;
  ops.release = fs_release;
  ops.mkdir = fs_mkdir;
  ops.rmdir = fs_rmdir;
  return ops;
}

// Detaches a control mount left by a daemon that died without cleaning up: its
// directory answers ENOTCONN.
void detach_stale_mount(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 && errno == ENOTCONN) {
    ::umount2(dir.c_str(), MNT_DETACH);
  }
}

}  // namespace

Result<std::unique_ptr<ControlFs>> ControlFs::mount(ControlTree& tree, const std::string& dir,
                                                    std::optional<gid_t> readers) {
  readers_gid = readers;
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    return system_error("control filesystem needs /dev/fuse", errno);
  }
  detach_stale_mount(dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Error{"cannot create control_dir " + dir + ": " + ec.message(), ec.value()};
  }
  ::chmod(dir.c_str(), 0700);
  clock_gettime(CLOCK_REALTIME, &mount_time);
  std::unique_ptr<ControlFs> fs(new ControlFs());
  fs->dir_ = dir;
  static const fuse_operations ops = make_operations();
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  // fsname shows in /proc/mounts. allow_other lets root (and the readers' group) in when
  // ringlbd runs as its own user; default_permissions makes the kernel check each access
  // against the attributes above, so nobody else opens anything.
  fuse_opt_add_arg(&args, "ringlbd");
  fuse_opt_add_arg(&args, "-ofsname=ringlb,subtype=ringlb,allow_other,default_permissions");
  fs->served_.reset(new Served{.tree = &tree, .mu = {}, .open = {}});
  fs->fuse_ = fuse_new(&args, &ops, sizeof(ops), fs->served_.get());
  fuse_opt_free_args(&args);
  if (fs->fuse_ == nullptr) {
    return Error{"fuse_new failed for " + dir};
  }
  if (fuse_mount(fs->fuse_, dir.c_str()) != 0) {
    fuse_destroy(fs->fuse_);
    fs->fuse_ = nullptr;
    return Error{"cannot mount the control filesystem at " + dir};
  }

  // The guardian: reads a pipe whose only writer is this process; EOF means the daemon
  // is gone (exit, crash or SIGKILL), and the guardian detaches the mount.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      sigset_t all;
      sigfillset(&all);
      ::sigprocmask(SIG_BLOCK, &all, nullptr);
      // Keep nothing of the daemon's but the pipe: a listener copy would stay in the
      // SO_REUSEPORT group and take connections nobody accepts, and a /dev/fuse copy
      // would keep the mount alive.
      const unsigned keep = static_cast<unsigned>(fds[0]);
      if (keep > 0) {
        ::close_range(0, keep - 1, 0);
      }
      ::close_range(keep + 1, ~0U, 0);
      char byte;
      ssize_t r;
      do {
        r = ::read(fds[0], &byte, 1);
      } while (r != 0 && !(r < 0 && errno != EINTR));
      ::umount2(dir.c_str(), MNT_DETACH);
      ::_exit(0);
    }
    ::close(fds[0]);
    fs->guardian_pipe_ = UniqueFd(fds[1]);
    fs->guardian_ = pid;
  }

  // The destructor wakes the loop thread with kWakeSignal: a handler that does nothing,
  // without SA_RESTART, so that the loop's wait returns EINTR.
  struct sigaction wake {};
  wake.sa_handler = [](int) {};
  sigemptyset(&wake.sa_mask);
  ::sigaction(kWakeSignal, &wake, nullptr);
  fuse* f = fs->fuse_;
  fs->loop_running_ = true;
  fs->loop_ = std::thread([f, running = &fs->loop_running_] {
    sigset_t wake_set;
    sigemptyset(&wake_set);
    sigaddset(&wake_set, kWakeSignal);
    ::pthread_sigmask(SIG_UNBLOCK, &wake_set, nullptr);
    fuse_loop_mt(f, 0);
    *running = false;
  });
  return fs;
}

ControlFs::~ControlFs() {
  if (fuse_ != nullptr) {
    // Detach from the kernel's side first: the connection aborts, the loop threads'
    // reads of /dev/fuse fail with ENODEV and the loop returns. Only then may libfuse
    // close its descriptor (fuse_unmount closing it under a reading thread is a race).
    fuse_exit(fuse_);
    ::umount2(dir_.c_str(), MNT_DETACH);
    // A copy of the mount in another mount namespace (ip netns exec, unshare -m, a
    // container started since) keeps the connection alive, and the loop would wait for
    // ever. libfuse's loop thread waits in sem_wait, which a signal interrupts: it then
    // sees the exit flag, cancels its reading threads and returns. Repeated, because a
    // signal that lands just before the wait is lost.
    for (int i = 0; i < 2000 && loop_running_; ++i) {
      ::pthread_kill(loop_.native_handle(), kWakeSignal);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (loop_.joinable()) {
    loop_.join();
  }
  if (fuse_ != nullptr) {
    fuse_unmount(fuse_);
    fuse_destroy(fuse_);
  }
  guardian_pipe_.reset();  // the guardian finds nothing left to detach, and exits
  if (guardian_ > 0) {
    ::waitpid(guardian_, nullptr, 0);
  }
}

}  // namespace ringlb::control
