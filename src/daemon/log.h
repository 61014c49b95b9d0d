// ringlbd's own messages: one line each on stderr, "ringlbd: " first (the journal under
// systemd; the tests wait for some of them, such as "ringlbd: serving").
#pragma once

#include <cstdio>

namespace ringlb::daemon {

inline void log(const char* format, auto... args) {
  std::fprintf(stderr, "ringlbd: ");
  std::fprintf(stderr, format, args...);
  std::fprintf(stderr, "\n");
}

}  // namespace ringlb::daemon
