// What /proc says about a process: CPU time, resident memory, status fields. The
// reliability tests watch ringlbd from outside with these, as an operator would.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace ringlb::test {

// The value of `key` ("CapEff", "VmRSS", ...) in a /proc/.../status file; "" if absent.
inline std::string status_field(const std::string& status_path, const std::string& key) {
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key + ":")) {
      const size_t start = line.find_first_not_of(" \t", key.size() + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  }
  return "";
}

inline std::string status_field(pid_t pid, const std::string& key) {
  return status_field("/proc/" + std::to_string(pid) + "/status", key);
}

// Resident memory in KiB (VmRSS), 0 if the process is gone.
inline uint64_t rss_kib(pid_t pid) {
  const std::string v = status_field(pid, "VmRSS");
  return v.empty() ? 0 : std::stoull(v);
}

// User plus system CPU time of the whole process (all threads) in milliseconds.
inline uint64_t cpu_ms(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: fields are counted after its closing ')'.
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  uint64_t utime = 0;
  uint64_t stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) {
      utime = std::stoull(field);
    } else if (i == 15) {
      stime = std::stoull(field);
    }
  }
  return (utime + stime) * 1000 / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
}

}  // namespace ringlb::test
