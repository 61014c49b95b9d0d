// What the connection-log tests share: a temporary directory, the [daemon] settings of
// a JSON log, and the log's lines read back.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace ringlb::test {

using json = nlohmann::json;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ringlb-log-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string log_settings(const std::string& path, const std::string& more = "") {
  return "access_log = \"" + path + "\"\naccess_log_format = \"json\"\n" + more;
}

// The JSON lines of `path` (each must parse).
inline std::vector<json> read_lines(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(json::parse(line));
  }
  return out;
}

// Waits (up to 5 s) until `path` holds at least `n` lines; returns them all.
inline std::vector<json> wait_lines(const std::string& path, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto lines = read_lines(path);
  while (lines.size() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lines = read_lines(path);
  }
  return lines;
}

inline uint16_t local_port(const Conn& conn) {
  sockaddr_in self{};
  socklen_t len = sizeof(self);
  ::getsockname(conn.fd(), reinterpret_cast<sockaddr*>(&self), &len);
  return ntohs(self.sin_port);
}

}  // namespace ringlb::test
