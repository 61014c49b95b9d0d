// The requests of the chaos test's clients (chaos_requests.h): connecting from a given
// source address, the chaos_backend exchanges and the HTTP GETs, every byte checked.
#include "chaos_requests.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

namespace ringlb::test::chaos {

namespace {

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok:
      return "ok";
    case Outcome::corrupt:
      return "corrupt";
    case Outcome::early_eof:
      return "early_eof";
    case Outcome::reset:
      return "reset";
    case Outcome::refused:
      return "refused";
    case Outcome::timeout:
      return "timeout";
  }
  return "?";
}

const std::vector<HttpFile>& http_files() {
  static const std::vector<HttpFile> files = {{"/f0.bin", 1024, 0xF11E0},
                                              {"/f1.bin", 7 * 1024 + 3, 0xF11E1},
                                              {"/f2.bin", 64 * 1024, 0xF11E2},
                                              {"/f3.bin", 300 * 1024 + 17, 0xF11E3},
                                              {"/f4.bin", 1 << 20, 0xF11E4}};
  return files;
}

UniqueFd open_connection(uint16_t port, const std::string& source, int rcvbuf,
                         Clock::time_point deadline, Result& res) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  if (rcvbuf > 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    res.outcome = Outcome::refused;
    res.detail = "test error: bind " + source + ": " + errno_name(errno);
    return {};
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int error = 0;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    error = errno;
    if (error == EINPROGRESS) {
      pollfd p{.fd = fd.get(), .events = POLLOUT, .revents = 0};
      int n = 0;
      do {
        n = ::poll(&p, 1, remaining_ms(deadline));
      } while (n < 0 && errno == EINTR);
      if (n != 1) {
        res.outcome = Outcome::timeout;
        res.detail = "connect timed out";
        return {};
      }
      socklen_t len = sizeof(error);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len);
    }
  }
  if (error != 0) {
    res.outcome = error == ECONNREFUSED ? Outcome::refused
                  : error == ETIMEDOUT  ? Outcome::timeout
                                        : Outcome::reset;
    res.detail = "connect: " + errno_name(error);
    return {};
  }
  return fd;
}

Result tcp_exchange(uint16_t port, const std::string& source, const TcpSpec& spec,
                    std::mt19937_64& pace) {
  Result res;
  const auto deadline = Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
  UniqueFd fd = open_connection(port, source, spec.slow ? 32 * 1024 : 0, deadline, res);
  if (!fd.valid()) {
    return res;
  }
  std::vector<uint8_t> out(kChunk);
  std::vector<uint8_t> in(kChunk);
  std::vector<uint8_t> expected(kChunk);
  size_t line_sent = 0;
  uint64_t sent = 0;
  size_t out_len = 0;
  size_t out_pos = 0;
  bool sending = true;
  std::string header;
  uint64_t received = 0;
  std::string text;
  const auto progress = [&] {
    return "sent " + std::to_string(sent) + "/" + std::to_string(spec.send_len) + ", received " +
           std::to_string(spec.text ? text.size() : received) + "/" +
           std::to_string(spec.text ? spec.expect_text.size() : spec.expect_len) +
           (header.size() < kHeaderSize ? ", header " + std::to_string(header.size()) + "/8" : "");
  };
  const auto fail = [&](Outcome o, const std::string& why) {
    res.outcome = o;
    res.detail = why + "; " + progress();
    return res;
  };
  while (true) {
    const int left = remaining_ms(deadline);
    if (left <= 0) {
      return fail(Outcome::timeout,
                  "no answer within " + std::to_string(kRequestTimeoutMs) + " ms");
    }
    pollfd p{.fd = fd.get(),
             .events = static_cast<short>(POLLIN | (sending ? POLLOUT : 0)),
             .revents = 0};
    if (::poll(&p, 1, std::min(left, 200)) <= 0) {
      continue;
    }
    if (sending && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      while (sending) {
        const uint8_t* data;
        size_t size;
        const bool in_line = line_sent < spec.line.size();
        if (in_line) {
          data = reinterpret_cast<const uint8_t*>(spec.line.data()) + line_sent;
          size = spec.line.size() - line_sent;
        } else {
          if (out_pos == out_len) {
            if (sent == spec.send_len) {
              if (spec.half_close) {
                ::shutdown(fd.get(), SHUT_WR);
              }
              sending = false;
              break;
            }
            out_len = static_cast<size_t>(std::min<uint64_t>(kChunk, spec.send_len - sent));
            fast_fill(spec.send_seed, sent, out.data(), out_len);
            out_pos = 0;
          }
          data = out.data() + out_pos;
          size = out_len - out_pos;
        }
        const ssize_t w = ::send(fd.get(), data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
          if (errno == EAGAIN || errno == EINTR) {
            break;
          }
          return fail(Outcome::reset, "send: " + errno_name(errno));
        }
        if (in_line) {
          line_sent += static_cast<size_t>(w);
        } else {
          out_pos += static_cast<size_t>(w);
          sent += static_cast<uint64_t>(w);
        }
      }
    }
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) {
      continue;
    }
    for (int round = 0; round < 16; ++round) {
      const size_t cap = spec.slow ? 8192 + pace() % (24 * 1024) : kChunk;
      const ssize_t r = ::recv(fd.get(), in.data(), cap, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          break;
        }
        return fail(Outcome::reset, "recv: " + errno_name(errno));
      }
      if (r == 0) {
        const bool complete = header.size() == kHeaderSize && !sending &&
                              (spec.text ? text == spec.expect_text : received == spec.expect_len);
        if (complete) {
          return res;
        }
        return fail(Outcome::early_eof, "clean EOF before the end");
      }
      size_t at = 0;
      const auto got = static_cast<size_t>(r);
      res.received += got;
      while (header.size() < kHeaderSize && at < got) {
        header += static_cast<char>(in[at++]);
        if (header.size() == kHeaderSize) {
          res.backend = chaos::parse_header(header);
          if (res.backend.empty()) {
            return fail(Outcome::corrupt, "bad backend header \"" + header + "\"");
          }
        }
      }
      const size_t n = got - at;
      if (n > 0 && spec.text) {
        text.append(reinterpret_cast<const char*>(in.data() + at), n);
        res.checked += n;
        if (text.size() > spec.expect_text.size() ||
            spec.expect_text.compare(0, text.size(), text) != 0) {
          return fail(Outcome::corrupt,
                      "sink reply \"" + text + "\", expected \"" +
                          spec.expect_text.substr(0, spec.expect_text.size() - 1) + "\\n\"");
        }
      } else if (n > 0) {
        if (received + n > spec.expect_len) {
          return fail(Outcome::corrupt,
                      std::to_string(received + n - spec.expect_len) + " bytes more than expected");
        }
        fast_fill(spec.expect_seed, received, expected.data(), n);
        if (std::memcmp(in.data() + at, expected.data(), n) != 0) {
          size_t i = 0;
          while (in[at + i] == expected[i]) {
            ++i;
          }
          return fail(Outcome::corrupt, "byte " + std::to_string(received + i) + " is " +
                                            std::to_string(in[at + i]) + ", expected " +
                                            std::to_string(expected[i]));
        }
        received += n;
        res.checked += n;
      }
      if (spec.slow) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + pace() % 35));
        break;
      }
    }
  }
}

Result http_get(uint16_t port, const std::string& source, const HttpFile& file) {
  Result res;
  const auto deadline = Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
  UniqueFd fd = open_connection(port, source, 0, deadline, res);
  if (!fd.valid()) {
    return res;
  }
  // The padding after the request stays unread in nginx's socket until the response is
  // out (nginx reads 1 KiB first, then lingers): killed before, nginx resets.
  const std::string request = "GET " + file.path +
                              " HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n\r\n" +
                              std::string(kHttpPadding, 'x');
  std::string head;
  bool head_done = false;
  uint64_t received = 0;
  size_t sent = 0;
  std::vector<uint8_t> in(kChunk);
  std::vector<uint8_t> expected(kChunk);
  const auto fail = [&](Outcome o, const std::string& why) {
    res.outcome = o;
    res.detail = why + "; request sent " + std::to_string(sent) + "/" +
                 std::to_string(request.size()) + ", body " + std::to_string(received) + "/" +
                 std::to_string(file.size) + (head_done ? "" : ", headers incomplete");
    return res;
  };
  // The body bytes in `data`, checked.
  const auto body = [&](const uint8_t* data, size_t n) -> bool {
    if (received + n > file.size) {
      fail(Outcome::corrupt, std::to_string(received + n - file.size) + " bytes after the body");
      return false;
    }
    fast_fill(file.seed, received, expected.data(), n);
    if (std::memcmp(data, expected.data(), n) != 0) {
      size_t i = 0;
      while (data[i] == expected[i]) {
        ++i;
      }
      fail(Outcome::corrupt, "body byte " + std::to_string(received + i) + " is " +
                                 std::to_string(data[i]) + ", expected " +
                                 std::to_string(expected[i]));
      return false;
    }
    received += n;
    res.checked += n;
    return true;
  };
  while (true) {
    const int left = remaining_ms(deadline);
    if (left <= 0) {
      return fail(Outcome::timeout,
                  "no answer within " + std::to_string(kRequestTimeoutMs) + " ms");
    }
    const bool sending = sent < request.size();
    pollfd p{.fd = fd.get(),
             .events = static_cast<short>(POLLIN | (sending ? POLLOUT : 0)),
             .revents = 0};
    if (::poll(&p, 1, std::min(left, 200)) <= 0) {
      continue;
    }
    if (sending && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = ::send(fd.get(), request.data() + sent, request.size() - sent,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        return fail(Outcome::reset, "send: " + errno_name(errno));
      }
      sent += w > 0 ? static_cast<size_t>(w) : 0;
    }
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) {
      continue;
    }
    for (int round = 0; round < 16; ++round) {
      const ssize_t r = ::recv(fd.get(), in.data(), in.size(), MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          break;
        }
        return fail(Outcome::reset, "recv: " + errno_name(errno));
      }
      if (r == 0) {
        if (head_done && received == file.size) {
          return res;
        }
        return fail(Outcome::early_eof, "clean EOF before the end");
      }
      const auto got = static_cast<size_t>(r);
      res.received += got;
      if (head_done) {
        if (!body(in.data(), got)) {
          return res;
        }
        continue;
      }
      head.append(reinterpret_cast<const char*>(in.data()), got);
      const size_t end = head.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (head.size() > 16384) {
          return fail(Outcome::corrupt, "no end of headers in 16 KiB");
        }
        continue;
      }
      head_done = true;
      const std::string rest = head.substr(end + 4);
      head.resize(end + 2);
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const auto header_value = [&](const std::string& name) -> std::optional<std::string> {
        const size_t at = lower.find("\r\n" + name + ":");
        if (at == std::string::npos) {
          return std::nullopt;
        }
        const size_t start = head.find_first_not_of(' ', at + 3 + name.size());
        return head.substr(start, head.find("\r\n", start) - start);
      };
      if (auto name = header_value("x-backend")) {
        res.backend = *name;
      }
      if (head.rfind("HTTP/1.1 200 ", 0) != 0) {
        return fail(Outcome::corrupt, "status line \"" + head.substr(0, head.find('\r')) + "\"");
      }
      if (res.backend.empty()) {
        return fail(Outcome::corrupt, "no X-Backend header");
      }
      const auto length = header_value("content-length");
      if (!length || *length != std::to_string(file.size)) {
        return fail(Outcome::corrupt, "Content-Length " + length.value_or("missing"));
      }
      if (!rest.empty() && !body(reinterpret_cast<const uint8_t*>(rest.data()), rest.size())) {
        return res;
      }
    }
  }
}

}  // namespace ringlb::test::chaos
