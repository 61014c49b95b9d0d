#include "daemon/access_log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "ringlb/clock.h"

namespace ringlb::daemon {

namespace {

constexpr std::chrono::milliseconds kRound{20};
constexpr size_t kBatch = 256;  // records taken from one ring at a time
// How long stop() waits for a blocked output before it gives up the rest.
constexpr uint64_t kStopGraceMs = 1000;

// RFC 3339 in UTC with microseconds: 2026-12-07T12:00:00.123456Z.
std::string rfc3339(uint64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1000000000u);
  tm utc{};
  ::gmtime_r(&seconds, &utc);
  char out[96];  // room for any int the compiler cannot rule out
  std::snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRIu64 "Z",
                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                utc.tm_sec, (unix_ns % 1000000000u) / 1000);
  return out;
}

std::string backend_address(const proxy::AccessRecord& r) {
  return r.backend_address.port != 0 ? r.backend_address.to_string() : std::string("-");
}

std::string or_dash(const char* name) {
  return name[0] != '\0' ? std::string(name) : std::string("-");
}

const char* close_kind(const proxy::AccessRecord& r) {
  return r.reset ? "reset" : "fin";
}

// Names are [A-Za-z0-9_.-] (is_valid_name) and addresses digits, dots, colons and
// brackets: nothing in a line needs quoting or escaping.
}  // namespace

std::string format_access_text(const proxy::AccessRecord& r) {
  char numbers[256];
  std::snprintf(numbers, sizeof(numbers),
                " worker=%u connect_us=%" PRId64 " duration_us=%" PRIu64
                " bytes_client_to_backend=%" PRIu64 " bytes_backend_to_client=%" PRIu64
                " retries=%u end=",
                r.worker, r.connect_us, r.duration_us, r.bytes_client_to_backend,
                r.bytes_backend_to_client, r.retries);
  return "time=" + rfc3339(r.closed_unix_ns) + " client=" + r.client.to_string() +
         " vip=" + or_dash(r.vip) + " backend=" + or_dash(r.backend) +
         " backend_address=" + backend_address(r) + numbers + std::string(proxy::end_name(r.end)) +
         " close=" + close_kind(r);
}

std::string format_access_json(const proxy::AccessRecord& r) {
  char numbers[256];
  std::snprintf(numbers, sizeof(numbers),
                "\"worker\":%u,\"connect_us\":%" PRId64 ",\"duration_us\":%" PRIu64
                ",\"bytes_client_to_backend\":%" PRIu64 ",\"bytes_backend_to_client\":%" PRIu64
                ",\"retries\":%u,\"end\":\"",
                r.worker, r.connect_us, r.duration_us, r.bytes_client_to_backend,
                r.bytes_backend_to_client, r.retries);
  const auto quoted_or_null = [](const char* name) {
    return name[0] != '\0' ? "\"" + std::string(name) + "\"" : std::string("null");
  };
  return "{\"time\":\"" + rfc3339(r.closed_unix_ns) + "\",\"client\":\"" + r.client.to_string() +
         "\",\"vip\":" + quoted_or_null(r.vip) + ",\"backend\":" + quoted_or_null(r.backend) +
         ",\"backend_address\":" +
         (r.backend_address.port != 0 ? "\"" + r.backend_address.to_string() + "\""
                                      : std::string("null")) +
         "," + numbers + std::string(proxy::end_name(r.end)) + "\",\"close\":\"" + close_kind(r) +
         "\"}";
}

Result<std::unique_ptr<AccessLog>> AccessLog::start(const AccessLogConfig& config, size_t workers,
                                                    const Runtime& runtime) {
  if (config.target.empty()) {
    return std::unique_ptr<AccessLog>();
  }
  std::unique_ptr<AccessLog> log(new AccessLog(config, runtime));
  if (auto opened = log->open_output(); !opened) {
    return opened.error();
  }
  for (size_t i = 0; i < workers; ++i) {
    log->rings_.push_back(std::make_unique<proxy::AccessRing>(config.buffer));
  }
  log->window_ms_ = monotonic_ms();
  log->thread_ = std::thread([raw = log.get()] { raw->run(); });
  return log;
}

AccessLog::~AccessLog() {
  stop();
}

proxy::AccessLogSink AccessLog::sink(size_t index) const {
  return proxy::AccessLogSink{.ring = rings_.at(index).get(), .sample_every = config_.sample};
}

Result<void> AccessLog::open_output() {
  if (config_.target == "journal") {
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    const char* override_path = std::getenv("RINGLB_JOURNAL_SOCKET");
    const std::string path = override_path != nullptr && override_path[0] != '\0'
                                 ? override_path
                                 : "/run/systemd/journal/socket";
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) {
      return Error{"access_log: journal socket path too long: " + path, ENAMETOOLONG};
    }
    path.copy(address.sun_path, path.size());
    if (!fd.valid() ||
        ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return system_error("access_log = \"journal\": cannot reach the journal at " + path, errno);
    }
    fd_ = std::move(fd);
    return {};
  }
  // Non-blocking: a FIFO nobody reads must not hold the thread past a stop.
  UniqueFd fd(::open(config_.target.c_str(),
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0640));
  if (!fd.valid()) {
    return system_error("access_log: cannot open " + config_.target, errno);
  }
  fd_ = std::move(fd);
  return {};
}

void AccessLog::run() {
  while (!stopping_.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(kRound);
    if (reopen_.exchange(false, std::memory_order_relaxed) && config_.target != "journal") {
      UniqueFd old = std::move(fd_);
      if (auto opened = open_output(); !opened) {
        std::fprintf(stderr, "ringlbd: %s; still writing to the old file\n",
                     opened.error().message.c_str());
        fd_ = std::move(old);
      }
    }
    round(monotonic_ms());
  }
  round(monotonic_ms());  // what the stopped workers left
}

void AccessLog::stop() {
  if (thread_.joinable()) {
    stopping_.store(true, std::memory_order_release);
    thread_.join();
  }
}

// Empties the rings, then says what was dropped (at most once a second), then writes.
void AccessLog::round(uint64_t now_ms) {
  proxy::AccessRecord batch[kBatch];
  for (auto& ring : rings_) {
    size_t n;
    while ((n = ring->pop(batch, kBatch)) != 0) {
      for (size_t i = 0; i < n; ++i) {
        if (config_.rate_limit != 0 && window_lines_ >= config_.rate_limit) {
          ++rate_dropped_;
          continue;
        }
        ++window_lines_;
        add_line(config_.format == AccessLogFormat::json ? format_access_json(batch[i])
                                                         : format_access_text(batch[i]),
                 &batch[i]);
      }
    }
  }
  const bool last = stopping_.load(std::memory_order_acquire);
  if (now_ms - window_ms_ >= 1000 || last) {
    window_ms_ = now_ms;
    window_lines_ = 0;
    uint64_t ring_total = 0;
    for (size_t i = 0; i < runtime_.worker_count(); ++i) {
      ring_total += runtime_.worker_stats(i).log_dropped.get();
    }
    add_notice(ring_total - ring_dropped_, "ring_full");
    ring_dropped_ = ring_total;
    add_notice(rate_dropped_, "rate_limit");
    rate_dropped_ = 0;
    add_notice(write_dropped_, "output_busy");
    write_dropped_ = 0;
  }
  flush();
}

void AccessLog::add_notice(uint64_t count, const char* reason) {
  if (count == 0) {
    return;
  }
  const std::string time = rfc3339(realtime_ns());
  const std::string n = std::to_string(count);
  add_line(config_.format == AccessLogFormat::json
               ? "{\"time\":\"" + time + "\",\"dropped\":" + n + ",\"reason\":\"" + reason + "\"}"
               : "time=" + time + " dropped=" + n + " reason=" + reason,
           nullptr);
}

void AccessLog::add_line(std::string line, const proxy::AccessRecord* record) {
  if (config_.target == "journal") {
    send_journal(line, record);
    return;
  }
  pending_ += line;
  pending_ += '\n';
}

void AccessLog::flush() {
  if (!pending_.empty()) {
    write_file(pending_);
    pending_.clear();
  }
}

// Writes all of `text`; waits for a full pipe in slices, and at a stop gives up after
// kStopGraceMs (the lines are counted as dropped in the last notice, if one still fits).
void AccessLog::write_file(const std::string& text) {
  size_t done = 0;
  uint64_t give_up_ms = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_.get(), text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      if (stopping_.load(std::memory_order_acquire)) {
        give_up_ms = give_up_ms != 0 ? give_up_ms : monotonic_ms() + kStopGraceMs;
        if (monotonic_ms() >= give_up_ms) {
          break;
        }
      }
      pollfd p{.fd = fd_.get(), .events = POLLOUT, .revents = 0};
      ::poll(&p, 1, 100);
      continue;
    }
    std::fprintf(stderr, "ringlbd: access_log: writing %s failed: %s\n", config_.target.c_str(),
                 std::strerror(errno));
    break;
  }
  if (done < text.size()) {
    for (size_t i = done; i < text.size(); ++i) {
      write_dropped_ += text[i] == '\n' ? 1 : 0;
    }
  }
}

// The journal's native protocol: one datagram of KEY=value lines.
void AccessLog::send_journal(const std::string& line, const proxy::AccessRecord* record) {
  std::string message = "MESSAGE=" + line + "\nPRIORITY=6\nSYSLOG_IDENTIFIER=ringlbd\n";
  if (record != nullptr) {
    message += "RINGLB_VIP=" + std::string(record->vip) +
               "\nRINGLB_BACKEND=" + std::string(record->backend) +
               "\nRINGLB_CLIENT=" + record->client.to_string() +
               "\nRINGLB_END=" + std::string(proxy::end_name(record->end)) + "\n";
  }
  if (::send(fd_.get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
    ++write_dropped_;
  }
}

}  // namespace ringlb::daemon
