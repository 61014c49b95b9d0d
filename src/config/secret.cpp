// The hash seed (config.h): parsing it, the rule for the file that holds it (a secret),
// and new seeds.
#include <sys/random.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "ringlb/config/config.h"

namespace ringlb {

std::optional<ringlb_hash_key> parse_hash_seed(std::string_view hex) {
  if (hex.size() != 32) {
    return std::nullopt;
  }
  uint64_t words[2] = {0, 0};
  for (size_t i = 0; i < 32; ++i) {
    const char c = hex[i];
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    words[i / 16] = (words[i / 16] << 4) | digit;
  }
  return ringlb_hash_key{words[0], words[1]};
}

Result<void> check_secret_file(const std::string& path, unsigned uid) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return system_error("cannot stat " + path, errno);
  }
  const unsigned mode = st.st_mode & 07777;
  const bool shared = (mode & 077) != 0;
  const bool foreign_owner = st.st_uid != 0 && st.st_uid != uid;
  if (!shared && !foreign_owner) {
    return {};
  }
  char octal[8];
  std::snprintf(octal, sizeof(octal), "%04o", mode);
  std::string problem = shared ? std::string("is open to group or others (mode ") + octal + ")"
                               : "belongs to uid " + std::to_string(st.st_uid) +
                                     ", neither root nor ringlbd's uid " + std::to_string(uid);
  return Error{path + " holds hash_seed, a secret, and " + problem + "; fix it with: chmod 600 " +
                   path + (foreign_owner ? " && chown root " + path : ""),
               EACCES};
}

Result<std::string> random_hash_seed() {
  uint8_t bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno != EINTR) {
      return system_error("getrandom", errno);
    }
    got += n > 0 ? static_cast<size_t>(n) : 0;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string seed;
  for (uint8_t b : bytes) {
    seed += kHex[b >> 4];
    seed += kHex[b & 15];
  }
  return seed;
}

}  // namespace ringlb
