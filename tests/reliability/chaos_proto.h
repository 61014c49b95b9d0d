// What the chaos test and its backend program (chaos_backend) agree on: the header a
// backend sends first, the request lines, the deterministic byte stream and the sink's
// checksum. Header-only, so that chaos_backend needs no library.
//
// A connection to chaos_backend:
//   backend -> client   kHeaderSize bytes: 'B', then the backend's name padded with '_'
//   client -> backend   one request line, then:
//     "E\n"            echo: every further byte comes back; closed after the client's EOF
//     "S <n> <seed>\n" source: n bytes of the stream <seed>, then close
//     "K <n>\n"        sink: read until EOF, reply "<count> <checksum hex>\n", then close
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../proxy/harness.h"

namespace ringlb::chaos {

constexpr size_t kHeaderSize = 8;
constexpr size_t kMaxNameSize = kHeaderSize - 1;
constexpr size_t kMaxRequestLine = 64;

inline std::string make_header(const std::string& name) {
  std::string h = "B" + name.substr(0, kMaxNameSize);
  h.resize(kHeaderSize, '_');
  return h;
}

// The name in a header, or "" if it is not a header.
inline std::string parse_header(const std::string& h) {
  if (h.size() != kHeaderSize || h[0] != 'B') {
    return "";
  }
  const size_t end = h.find_last_not_of('_');
  return end == 0 ? "" : h.substr(1, end);
}

// The bytes of test::stream_byte(seed, offset ...), eight at a time.
inline void fast_fill(uint64_t seed, uint64_t offset, uint8_t* out, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint64_t at = offset + i;
    uint64_t z = seed ^ ((at >> 3) * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (uint64_t k = at & 7; k < 8 && i < n; ++k, ++i) {
      out[i] = static_cast<uint8_t>(z >> (8 * k));
    }
  }
}

// The sink's checksum: FNV-1a over every byte.
constexpr uint64_t kChecksumStart = 0xcbf29ce484222325ULL;
inline uint64_t checksum(uint64_t h, const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ data[i]) * 0x100000001b3ULL;
  }
  return h;
}

}  // namespace ringlb::chaos
