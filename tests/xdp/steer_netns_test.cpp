// steer mode end to end (label integration, needs root): real TCP connections from a
// client namespace reach the XDP program attached natively on the balancer's veth, go
// through the cpumap to the CPU of the worker that owns hash(client), and are accepted by
// that worker's SO_REUSEPORT listener (ringlb_reuseport). SO_INCOMING_CPU of the
// accepted socket shows the CPU the packets were processed on.
//
// The test process unshares its own network namespace (gone with the process) and
// creates one named client namespace, deleted by RAII also when a check fails.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/model/client_hash.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb {
namespace {

int sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str());
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// The named client namespace; deleted on destruction.
struct ClientNamespace {
  std::string name = "rlsteer" + std::to_string(getpid());
  ~ClientNamespace() { sh("ip netns del " + name); }
};

constexpr int kWorkers = 2;
constexpr uint16_t kPort = 8080;

TEST(SteerNetns, EachClientIsAcceptedOnTheCpuAndListenerOwningItsHash) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root (namespaces, XDP)";
  }
  if (std::thread::hardware_concurrency() < kWorkers) {
    GTEST_SKIP() << "needs " << kWorkers << " CPUs";
  }
  ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
  Fd lb_ns(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  ClientNamespace client_ns;
  const std::string c = "ip netns exec " + client_ns.name + " ";
  for (const std::string& command : {
           "ip netns add " + client_ns.name,
           std::string("ip link set lo up"),
           std::string("ip link add lb0 type veth peer name cl0"),
           "ip link set cl0 netns " + client_ns.name,
           std::string("ip addr add 10.90.0.1/16 dev lb0"),
           std::string("ip addr add 10.0.0.20/32 dev lo"),
           std::string("ip link set lb0 up"),
           c + "ip link set lo up",
           c + "ip addr add 10.90.0.2/16 dev cl0",
           c + "ip link set cl0 up",
           c + "ip route add 10.0.0.20/32 via 10.90.0.1",
           // cpumap-built skbs carry no offload state: checksums must be filled.
           c + "ethtool -K cl0 tx off",
       }) {
    ASSERT_EQ(sh(command), 0) << command;
  }
  for (int i = 10; i < 40; ++i) {
    ASSERT_EQ(sh(c + "ip addr add 10.90.1." + std::to_string(i) + "/16 dev cl0"), 0);
  }

  auto config = parse_config(
      "[daemon]\nworkers = 2\nhash_seed = \"2233445566778899aabbccddeeff0011\"\n"
      "[xdp]\ninterface = \"lb0\"\n"
      "[[vip]]\nname = \"app\"\nlisten = \"10.0.0.20:8080\"\n"
      "[[vip.backend]]\nname = \"p\"\naddress = \"127.0.0.1:9000\"\n",
      "steer.toml");
  ASSERT_TRUE(config) << config.error().message;
  auto options = xdp::load_options(*config);
  options.pin_root.clear();
  ASSERT_EQ(options.steer_workers, static_cast<uint32_t>(kWorkers));
  auto program = xdp::XdpProgram::load(options);
  ASSERT_TRUE(program) << program.error().message;
  ASSERT_TRUE(program->apply(*config));
  const int ifindex = static_cast<int>(if_nametoindex("lb0"));
  auto attached = program->attach(ifindex, XdpAttach::native);
  ASSERT_TRUE(attached) << attached.error().message;

  // The workers' listeners, with the reuseport program and the socket array.
  sockaddr_in vip{};
  vip.sin_family = AF_INET;
  vip.sin_port = htons(kPort);
  inet_pton(AF_INET, "10.0.0.20", &vip.sin_addr);
  std::vector<Fd> listeners;
  for (int i = 0; i < kWorkers; ++i) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    ASSERT_EQ(setsockopt(s.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    ASSERT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&vip), sizeof(vip)), 0) << strerror(errno);
    ASSERT_EQ(listen(s.get(), 128), 0);
    listeners.push_back(std::move(s));
  }
  auto reuseport = xdp::ReuseportProgram::load(kWorkers, config->daemon.hash_key);
  ASSERT_TRUE(reuseport) << reuseport.error().message;
  for (uint32_t i = 0; i < kWorkers; ++i) {
    ASSERT_TRUE(reuseport->set_worker_socket(i, listeners[i].get()));
  }
  ASSERT_TRUE(reuseport->attach(listeners[0].get()));

  Fd client_ns_fd(::open(("/run/netns/" + client_ns.name).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(client_ns_fd.get(), 0) << strerror(errno);
  int per_worker[kWorkers] = {0, 0};
  for (int i = 10; i < 40; ++i) {
    const std::string client = "10.90.1." + std::to_string(i);
    const uint64_t owner =
        client_slot(config->daemon.hash_key, *IpAddress::parse(client), kWorkers);
    for (int attempt = 0; attempt < 2; ++attempt) {
      // A socket of the client namespace: create it there, then come back.
      ASSERT_EQ(setns(client_ns_fd.get(), CLONE_NEWNET), 0) << strerror(errno);
      Fd conn(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      ASSERT_EQ(setns(lb_ns.get(), CLONE_NEWNET), 0) << strerror(errno);
      sockaddr_in local{};
      local.sin_family = AF_INET;
      inet_pton(AF_INET, client.c_str(), &local.sin_addr);
      ASSERT_EQ(bind(conn.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
      timeval timeout{.tv_sec = 3, .tv_usec = 0};
      setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
      ASSERT_EQ(connect(conn.get(), reinterpret_cast<sockaddr*>(&vip), sizeof(vip)), 0)
          << client << ": " << strerror(errno);
      int accepted_by = -1;
      int cpu = -1;
      for (int spin = 0; spin < 2000 && accepted_by < 0; ++spin) {
        for (int w = 0; w < kWorkers && accepted_by < 0; ++w) {
          Fd accepted(accept4(listeners[w].get(), nullptr, nullptr, SOCK_CLOEXEC));
          if (accepted.get() >= 0) {
            accepted_by = w;
            socklen_t len = sizeof(cpu);
            getsockopt(accepted.get(), SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len);
          }
        }
        if (accepted_by < 0) {
          usleep(1000);
        }
      }
      ASSERT_GE(accepted_by, 0) << client << ": not accepted within 2 s";
      EXPECT_EQ(static_cast<uint64_t>(accepted_by), owner) << client << ": listener";
      EXPECT_EQ(static_cast<uint64_t>(cpu), owner) << client << ": CPU the packets ran on";
      ++per_worker[accepted_by];
    }
  }
  EXPECT_GT(per_worker[0], 0);
  EXPECT_GT(per_worker[1], 0);
  auto counters = xdp::read_counters(program->map_fd("verdict_stats"), RINGLB_V_MAX);
  ASSERT_TRUE(counters);
  EXPECT_GE((*counters)[RINGLB_V_REDIRECT_STEER].packets, 60u) << "SYNs went through the cpumap";
  EXPECT_TRUE(xdp::detach(ifindex));
}

}  // namespace
}  // namespace ringlb
