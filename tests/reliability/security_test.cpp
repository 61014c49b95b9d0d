// Least privilege and root-only control surfaces: ringlbd's capabilities after set-up,
// a reload that still binds a privileged port, the control mount's modes and options,
// and the pinned maps' modes. Needs root; skips, saying why, otherwise.
#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <linux/magic.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "../proxy/harness.h"
#include "../xdp/bpffs.h"
#include "proc.h"
#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb::test {
namespace {

using namespace std::chrono_literals;

uint64_t bit(int cap) {
  return uint64_t{1} << cap;
}

// The set docs/operations.md and tools/systemd/ringlbd.service document, written out here on
// purpose rather than taken from src/daemon/caps.h: the test checks the code against
// the documentation.
uint64_t documented_capabilities(bool control) {
  return bit(CAP_NET_BIND_SERVICE) | bit(CAP_NET_ADMIN) | bit(CAP_BPF) | bit(CAP_PERFMON) |
         bit(CAP_SYS_RESOURCE) | (control ? bit(CAP_SYS_ADMIN) : 0);
}

uint64_t hex_field(const std::string& status_path, const std::string& key) {
  return std::stoull(status_field(status_path, key), nullptr, 16);
}

// Runs `body` in a child process as nobody (uid/gid 65534); returns its exit code.
// Call it only while this process has no other thread (fork copies one thread).
int as_nobody(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(100);
    }
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool wait_for_log(const Ringlbd& lb, const std::string& text, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (lb.log().find(text) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class Security : public testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root (ringlbd must start with capabilities to drop)";
    }
    self_permitted_ = hex_field("/proc/self/status", "CapPrm");
    self_bounding_ = hex_field("/proc/self/status", "CapBnd");
  }
  // What ringlbd can keep: the documented set, of what this test process could give it.
  uint64_t expected_permitted(bool control) const {
    return documented_capabilities(control) & self_permitted_;
  }
  // Without CAP_SETPCAP the bounding set cannot shrink (no_new_privs covers that case).
  uint64_t expected_bounding(bool control) const {
    return (self_permitted_ & bit(CAP_SETPCAP)) != 0
               ? documented_capabilities(control) & self_bounding_
               : self_bounding_;
  }

  // Every thread of `pid` holds exactly the expected sets.
  void expect_capabilities(pid_t pid, bool control) {
    size_t threads = 0;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      const std::string status = task.path().string() + "/status";
      SCOPED_TRACE(status);
      EXPECT_EQ(hex_field(status, "CapEff"), expected_permitted(control));
      EXPECT_EQ(hex_field(status, "CapPrm"), expected_permitted(control));
      EXPECT_EQ(hex_field(status, "CapInh"), 0u);
      EXPECT_EQ(hex_field(status, "CapAmb"), 0u);
      EXPECT_EQ(hex_field(status, "CapBnd"), expected_bounding(control));
      EXPECT_EQ(status_field(status, "NoNewPrivs"), "1");
      ++threads;
    }
    EXPECT_GE(threads, 3u) << "main thread and two workers at least";
  }

  uint64_t self_permitted_ = 0;
  uint64_t self_bounding_ = 0;
};

TEST_F(Security, EveryThreadKeepsOnlyTheDocumentedCapabilities) {
  Backend a("a", BackendMode::echo);
  Ringlbd lb(proxy_config(free_port(), {&a}));
  const bool control = lb.log().find("control filesystem at") != std::string::npos;
  expect_capabilities(lb.pid(), control);
}

TEST_F(Security, WithoutTheControlFilesystemSysAdminGoesToo) {
  Backend a("a", BackendMode::echo);
  Ringlbd lb(proxy_config(free_port(), {&a}), {"--no-control"});
  expect_capabilities(lb.pid(), false);
  EXPECT_EQ(
      hex_field("/proc/" + std::to_string(lb.pid()) + "/status", "CapEff") & bit(CAP_SYS_ADMIN),
      0u);
}

// CAP_NET_BIND_SERVICE is kept for this: a reload that adds a VIP below port 1024.
TEST_F(Security, ReloadAfterTheDropStillBindsAPrivilegedPort) {
  if ((self_permitted_ & bit(CAP_NET_BIND_SERVICE)) == 0) {
    GTEST_SKIP() << "this process has no CAP_NET_BIND_SERVICE to give ringlbd";
  }
  uint16_t low = 0;
  for (uint16_t port = 1023; port > 600 && low == 0; --port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      low = port;
    }
    ::close(fd);
  }
  ASSERT_NE(low, 0) << "no free port below 1024";
  Backend a("a", BackendMode::echo);
  const uint16_t high = free_port();
  const std::string config = proxy_config(high, {&a});
  Ringlbd lb(config);
  ASSERT_EQ(
      hex_field("/proc/" + std::to_string(lb.pid()) + "/status", "CapEff") & bit(CAP_DAC_OVERRIDE),
      0u)
      << "the drop happened before the reload";
  lb.write_config(config +
                  "\n[[vip]]\nname = \"low\"\nlisten = \"127.0.0.1:" + std::to_string(low) +
                  "\"\n[[vip.backend]]\nname = \"a\"\naddress = \"" + a.address() + "\"\n");
  lb.signal(SIGHUP);
  ASSERT_TRUE(wait_for_log(lb, "reloaded", 5s)) << lb.log();
  Conn conn = Conn::open("127.0.0.1", low);
  ASSERT_TRUE(conn.ok()) << lb.log();
  ASSERT_TRUE(conn.send_all("privileged"));
  EXPECT_EQ(conn.read_exact(10).value_or("?"), "privileged");
}

TEST_F(Security, ControlFilesystemIsRootOnlyThroughItsPermissions) {
  // No Backend here: this process must stay single-threaded for as_nobody().
  Ringlbd lb("[daemon]\nworkers = 1\n[[vip]]\nname = \"v\"\nlisten = \"127.0.0.1:" +
             std::to_string(free_port()) +
             "\"\n[[vip.backend]]\nname = \"b\"\naddress = \"127.0.0.1:9\"\n");
  if (!wait_for_log(lb, "control filesystem at", 2s)) {
    GTEST_SKIP() << "the control filesystem is not mounted here: " << lb.log();
  }
  const std::string dir = lb.control_dir();
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0) << strerror(errno);
  // The root: the daemon's (root here), 0711 as the unit's RuntimeDirectoryMode; below
  // it everything is root's, with no access for others.
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(::stat((dir + "/vips").c_str(), &st), 0) << strerror(errno);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(::stat((dir + "/stats").c_str(), &st), 0) << strerror(errno);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_EQ(st.st_uid, 0u);
  // allow_other lets root in when ringlbd runs as its own user; default_permissions has
  // the kernel enforce the modes above for everyone else.
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  bool found = false;
  while (std::getline(mounts, line)) {
    if (line.find(" " + dir + " ") != std::string::npos) {
      found = true;
      EXPECT_NE(line.find("default_permissions"), std::string::npos) << line;
      EXPECT_NE(line.find("allow_other"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(found) << "no mount at " << dir;
  // Another user gets nothing: no listing, and no file even by its full path.
  const std::string stats = dir + "/stats";
  EXPECT_EQ(as_nobody([&] {
              if (::opendir(dir.c_str()) != nullptr) {
                return 1;
              }
              const int fd = ::open(stats.c_str(), O_RDONLY);
              return fd < 0 && errno == EACCES ? 0 : 2;
            }),
            0);
}

// Removes a pin directory and what is pinned in it, also when the test fails.
struct PinDir {
  explicit PinDir(std::string p) : path(std::move(p)) {}
  ~PinDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

TEST_F(Security, PinnedMapsAreOwnerOnly) {
  // The host's bpffs where there is one, else one of the test's own.
  std::string root = "/sys/fs/bpf";
  std::optional<ScratchBpffs> scratch;
  struct statfs fs {};
  if (::statfs(root.c_str(), &fs) != 0 || fs.f_type != BPF_FS_MAGIC) {
    scratch.emplace();
    if (!scratch->mounted()) {
      GTEST_SKIP() << "no bpffs at /sys/fs/bpf, and mounting one failed: " << strerror(errno);
    }
    root = scratch->path();
  }
  auto config = parse_config(
      "[xdp]\ninterface = \"lo\"\n[[vip]]\nname = \"f\"\nlisten = \"10.0.0.10:80\"\n"
      "mode = \"forward\"\n[[vip.backend]]\nname = \"b\"\naddress = \"10.200.0.1\"\n",
      "pins.toml");
  ASSERT_TRUE(config) << config.error().message;
  PinDir pins(root + "/ringlb-reliability-" + std::to_string(::getpid()));
  auto options = xdp::load_options(*config);
  options.pin_root = pins.path;
  size_t pinned = 0;
  {
    auto program = xdp::XdpProgram::load(options);
    if (!program) {
      GTEST_SKIP() << "cannot load the XDP program: " << program.error().message;
    }
    for (const auto& entry : std::filesystem::directory_iterator(pins.path)) {
      struct stat st {};
      ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, 0600u) << entry.path();
      EXPECT_EQ(st.st_uid, 0u) << entry.path();
      ++pinned;
    }
  }
  ASSERT_GT(pinned, 0u);
  struct stat dir {};
  ASSERT_EQ(::stat(pins.path.c_str(), &dir), 0);
  EXPECT_EQ(dir.st_mode & 0022, 0u) << "the pin directory is writable by others";
  // Another user cannot open a pinned map, even with the bpf() syscall.
  const std::string first = std::filesystem::directory_iterator(pins.path)->path();
  EXPECT_EQ(as_nobody([&] {
              const int fd = bpf_obj_get(first.c_str());
              return fd < 0 && (errno == EACCES || errno == EPERM) ? 0 : 1;
            }),
            0);
}

}  // namespace
}  // namespace ringlb::test
