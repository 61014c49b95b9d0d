// Spawning and owning the backend processes (chaos_procs.h): fork and exec with nothing
// inherited, start a chaos_backend or an nginx and wait until it listens, pick ports.
#include "chaos_procs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "../proxy/harness.h"
#include "chaos_common.h"
#include "proc.h"

namespace ringlb::test::chaos {

using namespace std::chrono_literals;

namespace {

// Whether something accepts connections on 127.0.0.1:port now (a connect succeeds; the
// connection is closed at once). /proc/net/tcp is no help under load: with thousands of
// sockets it is slow to read and may skip entries that change meanwhile.
bool accepts(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    return true;
  }
  if (errno != EINPROGRESS) {
    return false;
  }
  pollfd p{.fd = fd.get(), .events = POLLOUT, .revents = 0};
  int error = 0;
  socklen_t len = sizeof(error);
  return ::poll(&p, 1, 100) == 1 &&
         ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0;
}

// Forks and execs `args` with stdout and stderr to `log_path`, `pass_fd` as descriptor 3
// and nothing else inherited; the child dies with the thread that forked it (every fork
// of this test happens on the test's main thread).
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path, int pass_fd) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    int first_closed = 3;
    if (pass_fd >= 0) {
      if (pass_fd == 3) {
        ::fcntl(3, F_SETFD, 0);
      } else {
        ::dup2(pass_fd, 3);
      }
      first_closed = 4;
    }
    ::close_range(static_cast<unsigned>(first_closed), ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log);
  ::close(null);
  return pid;
}

}  // namespace

// A port below the kernel's ephemeral range (32768..60999 here) that binds now: a port
// a backend gives up while it is dead must not be taken as a connection's local port.
uint16_t pick_port(std::set<uint16_t>& taken) {
  static std::mt19937 rng(
      static_cast<uint32_t>(::getpid() ^ Clock::now().time_since_epoch().count()));
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto port = static_cast<uint16_t>(20000 + rng() % 12000);
    if (taken.contains(port)) {
      continue;
    }
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
      taken.insert(port);
      return port;
    }
  }
  throw std::runtime_error("no free port below 32000");
}

// Whether signal `sig` is still pending for process `pid` (not yet taken by its
// signalfd): /proc/<pid>/status, ShdPnd.
bool signal_pending(pid_t pid, int sig) {
  const std::string mask = status_field(pid, "ShdPnd");
  return !mask.empty() && (std::stoull(mask, nullptr, 16) >> (sig - 1) & 1) != 0;
}

std::string Proc::start() {
  ++starts;
  if (!nginx) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return "pipe: " + errno_name(errno);
    }
    pid = spawn(
        {CHAOS_BACKEND_PATH, "--port", std::to_string(port), "--name", name, "--ready-fd", "3"},
        dir + "/log", fds[1]);
    ::close(fds[1]);
    pollfd p{.fd = fds[0], .events = POLLIN, .revents = 0};
    char byte = 0;
    const bool ready = ::poll(&p, 1, 5000) == 1 && ::read(fds[0], &byte, 1) == 1 && byte == 'R';
    ::close(fds[0]);
    if (!ready) {
      hard_kill();
      return "chaos_backend " + name + " did not start: " + tail(read_text(dir + "/log"), 500);
    }
    return "";
  }
  pid = spawn(
      {"/usr/sbin/nginx", "-p", dir + "/", "-c", dir + "/nginx.conf", "-e", dir + "/error.log"},
      dir + "/stdout.log", -1);
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return "nginx " + name + " exited at start: " + tail(read_text(dir + "/error.log"), 500);
    }
    if (accepts(port)) {
      return "";
    }
    std::this_thread::sleep_for(5ms);
  }
  const std::string proc_dir = "/proc/" + std::to_string(pid);
  std::string state = status_field(proc_dir + "/status", "State") + ", wchan " +
                      read_text(proc_dir + "/wchan") + ", stack " + read_text(proc_dir + "/stack");
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator(proc_dir + "/fd", ec)) {
    state += " " + fd.path().filename().string() + "->" +
             std::filesystem::read_symlink(fd.path(), ec).string();
  }
  hard_kill();
  return "nginx " + name + " did not listen on " + std::to_string(port) + " within 10 s (" + state +
         "): " + tail(read_text(dir + "/error.log"), 500) +
         tail(read_text(dir + "/stdout.log"), 500);
}

}  // namespace ringlb::test::chaos
