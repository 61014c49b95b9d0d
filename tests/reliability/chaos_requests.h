// Requests as a client makes them, each checked byte by byte: to a chaos_backend VIP
// (echo, source, sink, slow reads) and HTTP GETs to an nginx VIP; what came of one
// (Outcome, Result) and how the run records it (Record).
#pragma once

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../proxy/harness.h"
#include "chaos_common.h"

namespace ringlb::test::chaos {

enum class Outcome { ok, corrupt, early_eof, reset, refused, timeout };
const char* outcome_name(Outcome o);

struct Record {
  int thread = 0;
  std::string kind;
  std::string vip;
  int64_t start_us = 0;
  int64_t end_us = 0;
  std::string backend;  // from the backend's header or X-Backend; "" if none arrived
  Outcome outcome = Outcome::ok;
  std::string detail;
  uint64_t size = 0;
  uint64_t checked = 0;   // bytes compared
  uint64_t received = 0;  // response bytes of any kind
  std::string describe() const {
    std::ostringstream s;
    s << stamp(start_us) << ".." << stamp(end_us) << " thread " << thread << " " << kind << " "
      << size << " B on " << vip << ", backend " << (backend.empty() ? "?" : backend) << ": "
      << outcome_name(outcome) << (detail.empty() ? "" : " (" + detail + ")");
    return s.str();
  }
};

struct HttpFile {
  std::string path;
  uint64_t size;
  uint64_t seed;
};
const std::vector<HttpFile>& http_files();

struct Result {
  Outcome outcome = Outcome::ok;
  std::string backend;
  std::string detail;
  uint64_t checked = 0;
  uint64_t received = 0;  // response bytes of any kind (header included)
};

// A non-blocking connection from `source` (any 127/8 address, so that ip_hash sees
// different clients) to 127.0.0.1:port. Invalid on failure, with `res` saying why.
UniqueFd open_connection(uint16_t port, const std::string& source, int rcvbuf,
                         Clock::time_point deadline, Result& res);

// A request to a chaos_backend VIP: a request line, `send_len` bytes of stream
// `send_seed` (then a half-close if asked), and the reply checked as it comes: the
// backend's header, then `expect_len` bytes of stream `expect_seed` or `expect_text`,
// then EOF.
struct TcpSpec {
  std::string line;
  uint64_t send_len = 0;
  uint64_t send_seed = 0;
  bool half_close = true;
  bool text = false;
  uint64_t expect_len = 0;
  uint64_t expect_seed = 0;
  std::string expect_text;
  bool slow = false;  // reads a little at a time, with pauses
};

Result tcp_exchange(uint16_t port, const std::string& source, const TcpSpec& spec,
                    std::mt19937_64& pace);

// An HTTP/1.1 GET with Connection: close: status 200, X-Backend, every body byte, EOF.
Result http_get(uint16_t port, const std::string& source, const HttpFile& file);

}  // namespace ringlb::test::chaos
