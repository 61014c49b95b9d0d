// What every part of the chaos test shares: the options of a run, its fixed parameters
// and a few small helpers (seed mixing, time stamps, errno names, files and log tails).
// The protocol with chaos_backend (chaos_proto.h, namespace ringlb::chaos) is reachable
// here by the names the test uses: chaos::parse_header, fast_fill and so on.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "chaos_proto.h"

namespace ringlb::test::chaos {

using Clock = std::chrono::steady_clock;
using ::ringlb::chaos::checksum;
using ::ringlb::chaos::fast_fill;
using ::ringlb::chaos::kChecksumStart;
using ::ringlb::chaos::kHeaderSize;
using ::ringlb::chaos::make_header;
using ::ringlb::chaos::parse_header;

// ---- options ---------------------------------------------------------------------------

constexpr uint64_t kDefaultSeed = 20240611;
constexpr double kDefaultSeconds = 25;

struct Options {
  uint64_t seed = kDefaultSeed;
  double seconds = kDefaultSeconds;
  std::string argv0 = "chaos_tests";
};
// Set by main() (chaos_test.cpp) from the environment and the command line.
extern Options g_options;

// ---- fixed parameters of a run ---------------------------------------------------------

constexpr int kConnectTimeoutMs = 300;
constexpr int kIdleTimeoutMs = 15000;
constexpr int kDrainTimeoutMs = 3000;
constexpr int kHealthIntervalMs = 200;
constexpr int kHealthTimeoutMs = 100;
constexpr int kHealthRise = 2;
constexpr int kEjectionMs = 500;
constexpr int kMaxEjectionMs = 1000;
// After a health run's backend comes back (restart, SIGCONT) it counts as good only once
// the checks can have seen it (rise passes) and an ejection can have run out.
constexpr int kSettleMs =
    std::max(kHealthRise * kHealthIntervalMs + kHealthTimeoutMs, kMaxEjectionMs) + 500;
constexpr int kRequestTimeoutMs = 20000;
constexpr int kRemovedVipRefusalMs = 500;
constexpr int kReloadAckMs = 10000;
constexpr int kBurstWriters = 16;
constexpr int kDisruptEmptyPercent = 15;  // how often an event may leave a VIP no good backend
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kHttpPadding = 4096;
// RSS may grow by 32 MiB of the daemon's own memory. In a TSan build (the whole project
// is built alike, so this test tells) every byte the daemon touches brings about four of
// shadow and some metadata: the same 32 MiB of the daemon show as about five times as
// much RSS. (ASan's part is small once its quarantine is, see main() in chaos_test.cpp.)
#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif
#else
constexpr bool kTsan = false;
#endif
constexpr uint64_t kRssBoundKib = (kTsan ? 5 : 1) * 32 * 1024;
const char* const kPolicies[] = {"round_robin", "weighted", "least_request", "random", "ip_hash"};

inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::string stamp(int64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "+%.3fs", static_cast<double>(us) / 1e6);
  return buf;
}

inline std::string errno_name(int e) {
  return e == 0 ? "ok" : std::string(strerrordesc_np(e)) + " (" + std::to_string(e) + ")";
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string tail(const std::string& text, size_t n) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

}  // namespace ringlb::test::chaos
