// The connection log ([daemon] access_log): ringlbd as a child process, real clients
// and backends on loopback, the log read back as JSON lines (or journal datagrams).
//   - every end reason a test can cause appears with the right fields;
//   - sampling and the rate cap log what they should and count the rest in the log;
//   - a log nobody reads (a FIFO) fills the rings: records are dropped and counted, the
//     workers keep serving at full speed, and once read every record or drop adds up;
//   - SIGUSR2 reopens the file (logrotate); the journal gets MESSAGE and RINGLB_* fields.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "access_log_helpers.h"
#include "harness.h"

namespace ringlb::test {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One exchange: sends `text`, reads it back (echo), then half-closes and reads the EOF.
void exchange(Conn& conn, const std::string& text) {
  ASSERT_TRUE(conn.send_all(text));
  ASSERT_EQ(conn.read_exact(text.size()), text);
  conn.shutdown_write();
  ASSERT_TRUE(conn.read_to_eof().has_value());
}

TEST(AccessLog, AFinishedExchangeHasEveryField) {
  TempDir dir;
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a}, "", "workers = 1\n" + log_settings(dir.file("access.log"))));
  Conn conn = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(conn.ok());
  const uint16_t client_port = local_port(conn);
  const auto before = std::chrono::system_clock::now();
  exchange(conn, "hello");
  const auto lines = wait_lines(dir.file("access.log"), 1);
  ASSERT_EQ(lines.size(), 1u);
  const json& r = lines[0];
  EXPECT_EQ(r["client"], "127.0.0.1:" + std::to_string(client_port));
  EXPECT_EQ(r["vip"], "test");
  EXPECT_EQ(r["backend"], "a");
  EXPECT_EQ(r["backend_address"], a.address());
  EXPECT_EQ(r["worker"], 0);
  EXPECT_EQ(r["bytes_client_to_backend"], 5);
  EXPECT_EQ(r["bytes_backend_to_client"], 5);
  EXPECT_EQ(r["retries"], 0);
  EXPECT_EQ(r["end"], "client_fin");
  EXPECT_EQ(r["close"], "fin");
  EXPECT_GE(r["connect_us"].get<int64_t>(), 0);
  EXPECT_GE(r["duration_us"].get<int64_t>(), r["connect_us"].get<int64_t>());
  // The time is RFC 3339 UTC with microseconds, and it is now (within a minute).
  const std::string time = r["time"];
  ASSERT_EQ(time.size(), 27u) << time;
  std::tm utc{};
  ASSERT_NE(::strptime(time.c_str(), "%Y-%m-%dT%H:%M:%S", &utc), nullptr) << time;
  const auto logged = std::chrono::system_clock::from_time_t(::timegm(&utc));
  EXPECT_LT(std::chrono::abs(logged - before), 60s) << time;
}

// A backend that answers "bye" and closes first, once per connection.
class ClosingBackend {
 public:
  ClosingBackend() : port_(free_port()) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listener_.get(), 16) != 0) {
      throw std::runtime_error("closing backend: bind/listen failed");
    }
    thread_ = std::thread([this] {
      const int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        (void)!::write(c, "bye", 3);
        ::close(c);
      }
    });
  }
  ~ClosingBackend() {
    ::shutdown(listener_.get(), SHUT_RDWR);  // ends a pending accept
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  uint16_t port_;
  UniqueFd listener_;
  std::thread thread_;
};

TEST(AccessLog, FinsAndResetsNameTheSideThatEndedFirst) {
  TempDir dir;
  Backend a("a", BackendMode::echo);
  ClosingBackend closing;
  const uint16_t port = free_port();
  const uint16_t closing_port = free_port();
  const std::string settings = "workers = 1\n" + log_settings(dir.file("access.log"));
  Ringlbd lb(proxy_config(port, {&a}, "", settings) +
             "[[vip]]\nname = \"closing\"\nlisten = "
             "\"127.0.0.1:" +
             std::to_string(closing_port) +
             "\"\n[[vip.backend]]\nname = "
             "\"c\"\naddress = \"" +
             closing.address() + "\"\n");
  // The backend's FIN first.
  {
    Conn conn = Conn::open("127.0.0.1", closing_port);
    ASSERT_EQ(conn.read_to_eof(), "bye");
    conn.shutdown_write();  // the connection ends when both sides have
    const auto lines = wait_lines(dir.file("access.log"), 1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["end"], "backend_fin");
    EXPECT_EQ(lines[0]["close"], "fin");
    EXPECT_EQ(lines[0]["vip"], "closing");
    EXPECT_EQ(lines[0]["bytes_backend_to_client"], 3);
  }
  // The client resets.
  {
    Conn conn = Conn::open("127.0.0.1", port);
    ASSERT_TRUE(conn.send_all("x"));
    ASSERT_EQ(conn.read_exact(1), "x");
    const linger l{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(conn.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  auto lines = wait_lines(dir.file("access.log"), 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["end"], "client_reset");
  EXPECT_EQ(lines[1]["close"], "reset");
  // The backend resets.
  Conn conn = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(conn.send_all("y"));
  ASSERT_EQ(conn.read_exact(1), "y");
  a.reset_all();
  lines = wait_lines(dir.file("access.log"), 3);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2]["end"], "backend_reset");
  EXPECT_EQ(lines[2]["close"], "reset");
  EXPECT_EQ(lines[2]["backend"], "a");
}

TEST(AccessLog, RinglbdsOwnClosesSayWhy) {
  TempDir dir;
  Backend a("a", BackendMode::echo);
  const uint16_t idle_port = free_port();
  const uint16_t age_port = free_port();
  const uint16_t refused_port = free_port();
  const uint16_t down_port = free_port();
  const uint16_t plain_port = free_port();
  const std::string closed_backend = "127.0.0.1:" + std::to_string(free_port());  // nobody
  auto vip = [&](const std::string& name, uint16_t port, const std::string& extra,
                 const std::string& backend) {
    return "[[vip]]\nname = \"" + name + "\"\nlisten = \"127.0.0.1:" + std::to_string(port) +
           "\"\n" + extra + "[[vip.backend]]\nname = \"b-" + name + "\"\naddress = \"" + backend +
           "\"\n";
  };
  Ringlbd lb("[daemon]\nworkers = 1\ndrain_timeout_ms = 300\n" +
             log_settings(dir.file("access.log")) +
             vip("idle", idle_port, "idle_timeout_ms = 200\n", a.address()) +
             vip("age", age_port, "max_connection_age_ms = 200\n", a.address()) +
             vip("refused", refused_port, "connect_retries = 0\n", closed_backend) +
             vip("down", down_port, "", a.address()) + "state = \"down\"\n" +
             vip("plain", plain_port, "", a.address()));
  Conn idle = Conn::open("127.0.0.1", idle_port);
  Conn aged = Conn::open("127.0.0.1", age_port);
  Conn refused = Conn::open("127.0.0.1", refused_port);
  Conn down = Conn::open("127.0.0.1", down_port);
  // Each ends on its own. ringlbd resets `refused` and `down` right after accepting
  // them, which may be before the client has seen its handshake through (Conn::open
  // then fails): they are logged either way.
  for (Conn* c : {&idle, &aged, &refused, &down}) {
    ASSERT_TRUE(c->ok() || c == &refused || c == &down);
    if (c->ok()) {
      c->read_to_eof(3000);
    }
  }
  Conn drained = Conn::open("127.0.0.1", plain_port);  // still open at the drain deadline
  ASSERT_TRUE(drained.send_all("z"));
  ASSERT_EQ(drained.read_exact(1), "z");
  auto lines = wait_lines(dir.file("access.log"), 4);
  lb.signal(SIGTERM);
  ASSERT_EQ(lb.wait_exit(5000), 0) << lb.log();
  lines = read_lines(dir.file("access.log"));
  std::map<std::string, json> by_end;
  for (const auto& line : lines) {
    by_end[line["end"].get<std::string>()] = line;
  }
  ASSERT_EQ(lines.size(), 5u) << testing::PrintToString(lines);
  EXPECT_EQ(by_end["idle"]["vip"], "idle");
  EXPECT_EQ(by_end["idle"]["close"], "fin");
  EXPECT_EQ(by_end["age"]["vip"], "age");
  EXPECT_EQ(by_end["age"]["close"], "fin");
  // The backend that refused is named; it never connected.
  EXPECT_EQ(by_end["connect_failed"]["vip"], "refused");
  EXPECT_EQ(by_end["connect_failed"]["backend"], "b-refused");
  EXPECT_EQ(by_end["connect_failed"]["backend_address"], closed_backend);
  EXPECT_EQ(by_end["connect_failed"]["connect_us"], -1);
  EXPECT_EQ(by_end["connect_failed"]["close"], "reset");
  EXPECT_EQ(by_end["no_backend"]["vip"], "down");
  EXPECT_TRUE(by_end["no_backend"]["backend"].is_null());
  EXPECT_EQ(by_end["drain"]["vip"], "plain");
  EXPECT_EQ(by_end["drain"]["bytes_client_to_backend"], 1);
  EXPECT_EQ(by_end["drain"]["close"], "reset");
}

TEST(AccessLog, ABackendShutdownThroughTheControlTreeIsNamed) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "the control filesystem needs root";
  }
  TempDir dir;
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(port, {&a}, "", "workers = 1\n" + log_settings(dir.file("access.log"))));
  Conn conn = Conn::open("127.0.0.1", port);
  ASSERT_TRUE(conn.send_all("q"));
  ASSERT_EQ(conn.read_exact(1), "q");
  std::ofstream(lb.control_dir() + "/vips/test/backends/a/shutdown") << "1\n";
  const auto lines = wait_lines(dir.file("access.log"), 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["end"], "backend_shutdown");
  EXPECT_EQ(lines[0]["close"], "reset");
}

// Sequential connections through one worker: `n` exchanges of one byte.
void run_exchanges(uint16_t port, int n) {
  for (int i = 0; i < n; ++i) {
    Conn conn = Conn::open("127.0.0.1", port);
    ASSERT_TRUE(conn.ok());
    exchange(conn, "s");
  }
}

// The number of records the notices of `lines` say were dropped for `reason`.
uint64_t dropped(const std::vector<json>& lines, const std::string& reason) {
  uint64_t total = 0;
  for (const auto& line : lines) {
    if (line.contains("dropped") && line["reason"] == reason) {
      total += line["dropped"].get<uint64_t>();
    }
  }
  return total;
}

size_t records(const std::vector<json>& lines) {
  size_t n = 0;
  for (const auto& line : lines) {
    n += line.contains("end") ? 1 : 0;
  }
  return n;
}

TEST(AccessLog, SamplingLogsOneInNAndTheRateCapCountsWhatItDrops) {
  Backend a("a", BackendMode::echo);
  {
    TempDir dir;
    const uint16_t port = free_port();
    Ringlbd lb(proxy_config(port, {&a}, "",
                            "workers = 1\n" + log_settings(dir.file("a.log"), "log_sample = 3\n")));
    run_exchanges(port, 30);
    const auto lines = wait_lines(dir.file("a.log"), 10);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(read_lines(dir.file("a.log")).size(), 10u);
  }
  TempDir dir;
  const uint16_t port = free_port();
  Ringlbd lb(proxy_config(
      port, {&a}, "", "workers = 1\n" + log_settings(dir.file("b.log"), "log_rate_limit = 5\n")));
  const auto start = Clock::now();
  run_exchanges(port, 40);
  const auto took = Clock::now() - start;
  std::vector<json> lines;
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {  // the notice comes at the end of the second
    lines = read_lines(dir.file("b.log"));
    if (records(lines) + dropped(lines, "rate_limit") >= 40) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(records(lines) + dropped(lines, "rate_limit"), 40u);
  // At most 5 a second, and the 40 took a few seconds at most.
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(took).count() + 2;
  EXPECT_LE(records(lines), static_cast<size_t>(5 * seconds));
  EXPECT_GE(records(lines), 5u);
}

TEST(AccessLog, AFullRingDropsAndCountsAndNeverStallsTheWorker) {
  TempDir dir;
  const std::string fifo = dir.file("access.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // A reader that holds the FIFO open and reads nothing (yet): once its 64 KiB fill,
  // the log thread's writes wait, and the worker's 16-record ring fills behind them.
  UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(reader.valid());
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  Ringlbd lb(
      proxy_config(port, {&a}, "", "workers = 1\n" + log_settings(fifo, "log_buffer = 16\n")));
  constexpr int kConnections = 1500;
  std::vector<int64_t> us;
  for (int i = 0; i < kConnections; ++i) {
    const auto t0 = Clock::now();
    Conn conn = Conn::open("127.0.0.1", port);
    ASSERT_TRUE(conn.ok());
    exchange(conn, "f");
    us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  const int64_t p99 = us[us.size() * 99 / 100];
  // Not a timing target: a stalled worker would show seconds (it would wait for the log).
  EXPECT_LT(p99, 200'000) << "a connection's p99 while the log is blocked";
  // Now read: the waiting lines come, then a notice of what was dropped.
  std::string text;
  const auto deadline = Clock::now() + 5s;
  std::vector<json> lines;
  while (Clock::now() < deadline) {
    char buf[65536];
    const ssize_t n = ::read(reader.get(), buf, sizeof(buf));
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else {
      std::this_thread::sleep_for(20ms);
    }
    lines.clear();
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines.push_back(json::parse(text.substr(start, nl - start)));
    }
    if (records(lines) + dropped(lines, "ring_full") >= kConnections) {
      break;
    }
  }
  EXPECT_EQ(records(lines) + dropped(lines, "ring_full"), static_cast<size_t>(kConnections));
  // Read once every connection is accounted for: a client's exchange can finish before
  // the worker has seen its close, and the close is what logs (or drops) its record.
  const uint64_t dropped_by_worker = lb.worker_total("log_dropped");
  EXPECT_GT(dropped_by_worker, 0u) << "the log never fell behind: the test proves nothing";
  EXPECT_EQ(dropped(lines, "ring_full"), dropped_by_worker);
  std::cout << kConnections << " connections, log blocked: " << records(lines) << " logged, "
            << dropped_by_worker << " dropped and counted; p99 " << p99 << " us\n";
}

TEST(AccessLog, Sigusr2ReopensTheFileForLogrotate) {
  TempDir dir;
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  const std::string path = dir.file("access.log");
  Ringlbd lb(proxy_config(port, {&a}, "", "workers = 1\n" + log_settings(path)));
  run_exchanges(port, 2);
  ASSERT_EQ(wait_lines(path, 2).size(), 2u);
  std::filesystem::rename(path, path + ".1");  // what logrotate does
  lb.signal(SIGUSR2);
  std::this_thread::sleep_for(200ms);
  run_exchanges(port, 3);
  EXPECT_EQ(wait_lines(path, 3).size(), 3u);
  EXPECT_EQ(read_lines(path + ".1").size(), 2u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(AccessLog, TheJournalGetsTheLineAndItsFields) {
  TempDir dir;
  const std::string socket_path = dir.file("journal.socket");
  UniqueFd journal(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  socket_path.copy(address.sun_path, socket_path.size());
  ASSERT_EQ(::bind(journal.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  // ringlbd inherits it; unset again even when the start throws.
  struct JournalEnv {
    explicit JournalEnv(const std::string& path) {
      ::setenv("RINGLB_JOURNAL_SOCKET", path.c_str(), 1);
    }
    ~JournalEnv() { ::unsetenv("RINGLB_JOURNAL_SOCKET"); }
  };
  Backend a("a", BackendMode::echo);
  const uint16_t port = free_port();
  std::optional<Ringlbd> started;
  {
    JournalEnv env(socket_path);
    started.emplace(proxy_config(port, {&a}, "", "workers = 1\naccess_log = \"journal\"\n"));
  }
  run_exchanges(port, 1);
  pollfd p{.fd = journal.get(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no datagram";
  char buf[4096];
  const ssize_t n = ::recv(journal.get(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  const std::string datagram(buf, static_cast<size_t>(n));
  EXPECT_NE(datagram.find("MESSAGE=time="), std::string::npos) << datagram;
  EXPECT_NE(datagram.find(" end=client_fin close=fin\n"), std::string::npos) << datagram;
  EXPECT_NE(datagram.find("\nSYSLOG_IDENTIFIER=ringlbd\n"), std::string::npos) << datagram;
  EXPECT_NE(datagram.find("\nRINGLB_VIP=test\n"), std::string::npos) << datagram;
  EXPECT_NE(datagram.find("\nRINGLB_BACKEND=a\n"), std::string::npos) << datagram;
  EXPECT_NE(datagram.find("\nRINGLB_END=client_fin\n"), std::string::npos) << datagram;
}

TEST(AccessLog, AFileItCannotOpenStopsTheStartWithTheReason) {
  Backend a("a", BackendMode::echo);
  try {
    Ringlbd lb(
        proxy_config(free_port(), {&a}, "", log_settings("/nonexistent-dir/ringlb/access.log")));
    ADD_FAILURE() << "ringlbd started without its log";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "access_log: cannot open /nonexistent-dir/ringlb/access.log: No such file"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ringlb::test
