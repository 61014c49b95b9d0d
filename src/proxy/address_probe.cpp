// check_address_free (runtime.h): is a VIP's address already served by another process?
// ringlbd's listeners use SO_REUSEPORT, so a second ringlbd on the same address would
// bind too and take half the clients. A probe bind without SO_REUSEPORT (but with
// SO_REUSEADDR, so that connections in TIME_WAIT do not count) fails exactly when a
// socket listens there; /proc/net/tcp{,6} and /proc/<pid>/fd then name its process.
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "ringlb/proxy/runtime.h"

namespace ringlb {
namespace {

// Inodes of the TCP sockets listening on `address`'s port (state 0A) in /proc/net/tcp
// or tcp6. Any local address is taken: the port is what collides.
std::set<unsigned long> listening_inodes(const SocketAddress& address) {
  std::set<unsigned long> inodes;
  const char* table = address.ip.is_v4() ? "/proc/net/tcp" : "/proc/net/tcp6";
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
    unsigned long inode = 0;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    const auto colon = local.rfind(':');
    if (!fields || state != "0A" || colon == std::string::npos) {
      continue;
    }
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == address.port) {
      inodes.insert(inode);
    }
  }
  return inodes;
}

// "pid N (comm)" of a process holding one of `inodes`, when /proc lets us see it.
std::optional<std::string> owner_of(const std::set<unsigned long>& inodes) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return std::nullopt;
  }
  std::optional<std::string> owner;
  while (dirent* entry = ::readdir(proc)) {
    const std::string pid = entry->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos || owner) {
      continue;
    }
    const std::string fds = "/proc/" + pid + "/fd";
    DIR* dir = ::opendir(fds.c_str());
    if (dir == nullptr) {
      continue;  // gone, or another user's (no CAP_SYS_PTRACE)
    }
    while (dirent* fd = ::readdir(dir)) {
      char target[PATH_MAX];
      const std::string link = fds + "/" + fd->d_name;
      const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
      unsigned long inode = 0;
      if (n > 0 && (target[n] = '\0', std::sscanf(target, "socket:[%lu]", &inode) == 1) &&
          inodes.count(inode) != 0 && static_cast<pid_t>(std::stol(pid)) != ::getpid()) {
        std::string comm;
        std::getline(std::ifstream("/proc/" + pid + "/comm"), comm);
        owner = "pid " + pid + " (" + comm + ")";
        break;
      }
    }
    ::closedir(dir);
  }
  ::closedir(proc);
  return owner;
}

}  // namespace

Result<void> check_address_free(const SocketAddress& address) {
  const int family = address.ip.is_v4() ? AF_INET : AF_INET6;
  sockaddr_storage storage;
  const socklen_t len = address.to_sockaddr(storage);
  // A listener that no process holds is one being torn down: the sockets of a process
  // that used io_uring close in a kernel worker shortly after it exits (a ringlbd just
  // SIGKILLed, say). Give that up to 2 s before calling the address taken.
  std::optional<std::string> owner;
  for (int attempt = 0; attempt < 20; ++attempt) {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      return system_error("socket for " + address.to_string(), errno);
    }
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6) {
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), len) == 0 || errno != EADDRINUSE) {
      return {};  // free (other bind errors are bind_listener's to report)
    }
    owner = owner_of(listening_inodes(address));
    if (owner) {
      break;
    }
    ::usleep(100'000);
  }
  return Error{address.to_string() + " is already served by " +
                   (owner ? *owner : std::string("another process (see ss -ltnp)")) +
                   "; one ringlbd per address: stop the other first",
               EADDRINUSE};
}

}  // namespace ringlb
