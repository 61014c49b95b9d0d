#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "ringlb/config/config.h"

namespace ringlb {
namespace {

constexpr const char* kValid = R"(
[daemon]
workers = 2
control_dir = "/run/ringlb-test"
hash_seed = "000102030405060708090a0b0c0d0e0f"

[[vip]]
name = "web"
listen = "127.0.0.1:8080"
policy = "weighted"
connect_timeout_ms = 500
send_proxy_v2 = true

[[vip.backend]]
name = "b1"
address = "127.0.0.1:9001"
weight = 5

[[vip.backend]]
name = "b2"
address = "[::1]:9002"
state = "drain"

[[vip]]
name = "dns"
listen = "192.0.2.10:53"
protocol = "udp"
mode = "forward"

[[vip.backend]]
name = "r1"
address = "192.0.2.21"
)";

TEST(Config, ParsesTheFullSchema) {
  auto config = parse_config(kValid, "test.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->daemon.workers, 2u);
  EXPECT_EQ(config->daemon.control_dir, "/run/ringlb-test");
  EXPECT_TRUE(config->daemon.hash_seed_set);
  EXPECT_EQ(config->daemon.hash_key.k0, 0x0001020304050607ULL);
  EXPECT_EQ(config->daemon.hash_key.k1, 0x08090a0b0c0d0e0fULL);
  ASSERT_EQ(config->vips.size(), 2u);
  const auto& web = config->vips[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(web.policy, PolicyKind::weighted);
  EXPECT_EQ(web.mode, Mode::proxy);
  EXPECT_EQ(web.connect_timeout_ms, 500u);
  EXPECT_TRUE(web.send_proxy_v2);
  ASSERT_EQ(web.backends.size(), 2u);
  EXPECT_EQ(web.backends[0].weight, 5u);
  EXPECT_EQ(web.backends[1].address.to_string(), "[::1]:9002");
  EXPECT_EQ(web.backends[1].state, AdminState::drain);
  const auto& dns = config->vips[1];
  EXPECT_EQ(dns.mode, Mode::forward);
  EXPECT_EQ(dns.protocol, Protocol::udp);
  EXPECT_EQ(dns.policy, PolicyKind::ip_hash);
  EXPECT_EQ(dns.backends[0].address.port, 0);
}

TEST(Config, DefaultsApplyWhenKeysAreLeftOut) {
  auto config = parse_config(R"(
[[vip]]
name = "web"
listen = "127.0.0.1:8080"
[[vip.backend]]
name = "b1"
address = "127.0.0.1:9001"
)",
                             "min.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->daemon.workers, 0u);
  EXPECT_EQ(config->daemon.control_dir, "/run/ringlb");
  EXPECT_FALSE(config->daemon.hash_seed_set);
  EXPECT_EQ(config->vips[0].policy, PolicyKind::round_robin);
  EXPECT_EQ(config->vips[0].backends[0].weight, 1u);
}

struct BadCase {
  const char* description;
  const char* text;
  const char* expected;  // the whole error message must contain this
};

const BadCase kBadCases[] = {
    {"syntax error", "[[vip]\nname = 1", "bad.toml:1:"},
    {"unknown top-level key", "colour = 1\n",
     "bad.toml:1:1: colour: unknown key (expected one of: daemon, xdp, vip)"},
    {"unknown vip key",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\nlisen='x'\n[[vip.backend]]\nname='b'\naddress='127."
     "0.0.1:2'",
     "bad.toml:4:1: vip[w].lisen: unknown key (expected one of: name, listen,"},
    {"unknown backend key",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'"
     "\nwieght=2",
     "bad.toml:7:1: vip[w].backend[b].wieght: unknown key"},
    {"weight out of range",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'"
     "\nweight=20000",
     "bad.toml:7:8: vip[w].backend[b].weight: expected an integer in 0..10000, got 20000"},
    {"negative weight",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'"
     "\nweight=-1",
     "vip[w].backend[b].weight: expected an integer in 0..10000, got -1"},
    {"weight of the wrong type",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'"
     "\nweight='5'",
     "vip[w].backend[b].weight: expected an integer in 0..10000, got a string"},
    {"bad backend address",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.300:2'",
     "bad.toml:6:9: vip[w].backend[b].address: expected ip:port"},
    {"backend without port in proxy mode",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1'",
     "vip[w].backend[b].address: expected ip:port"},
    {"backend with port in forward mode",
     "[[vip]]\nname='w'\nlisten='192.0.2.1:80'\nmode='forward'\n[[vip.backend]]\nname='b'\naddress="
     "'192.0.2.2:80'",
     "vip[w].backend[b].address: expected an IP address without port (forward mode)"},
    {"bad listen address", "[[vip]]\nname='w'\nlisten='localhost:80'\n",
     "bad.toml:3:8: vip[w].listen: expected ip:port"},
    {"empty pool", "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n",
     "bad.toml:1:1: vip[w]: empty pool: add at least one [[vip.backend]]"},
    {"no vip at all", "[daemon]\nworkers = 1\n", "vip: no [[vip]] defined"},
    {"duplicate vip names",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'\n"
     "[[vip]]\nname='w'\nlisten='127.0.0.1:3'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'",
     "bad.toml:8:6: vip[w].name: duplicate vip name \"w\""},
    {"duplicate backend names",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'\n"
     "[[vip.backend]]\nname='b'\naddress='127.0.0.1:3'",
     "bad.toml:8:6: vip[w].backend[b].name: duplicate backend name \"b\" in this vip"},
    {"two vips on one listen address",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'\n"
     "[[vip]]\nname='x'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'",
     "vip[x].listen: another vip already listens on 127.0.0.1:1/tcp"},
    {"unknown policy",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\npolicy='fastest'\n[[vip.backend]]\nname='b'"
     "\naddress='127.0.0.1:2'",
     "bad.toml:4:8: vip[w].policy: expected one of round_robin, weighted, least_request, random, "
     "ip_hash, got \"fastest\""},
    {"unknown state",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'"
     "\nstate='off'",
     "vip[w].backend[b].state: expected one of up, drain, down, got \"off\""},
    {"udp in proxy mode",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\nprotocol='udp'\n[[vip.backend]]\nname='b'\naddress='"
     "127.0.0.1:2'",
     "vip[w].protocol: proxy mode forwards TCP only"},
    {"bad vip name", "[[vip]]\nname='a/b'\nlisten='127.0.0.1:1'\n",
     "vip[0].name: expected 1..64 characters of [A-Za-z0-9_.-], got \"a/b\""},
    {"missing backend name",
     "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\naddress='127.0.0.1:2'",
     "bad.toml:4:1: vip[w].backend[0].name: missing (required)"},
    {"workers out of range", "[daemon]\nworkers = 5000\n",
     "bad.toml:2:11: daemon.workers: expected an integer in 0..1024, got 5000"},
    {"short hash seed", "[daemon]\nhash_seed = 'abcd'\n",
     "daemon.hash_seed: expected 32 hexadecimal digits"},
    {"table size not prime", "[daemon]\nmaglev_table_size = 65536\n",
     "daemon.maglev_table_size: expected a prime number"},
    {"flow entries not a power of two", "[xdp]\ninterface = 'eth0'\nflow_entries = 100000\n",
     "bad.toml:3:16: xdp.flow_entries: expected a power of two (65536 is the default), got "
     "100000"},
    {"flow entries below the least", "[xdp]\ninterface = 'eth0'\nflow_entries = 4\n",
     "xdp.flow_entries: expected an integer in 8..4194304, got 4"},
    {"flow entries not an integer", "[xdp]\ninterface = 'eth0'\nflow_entries = '64k'\n",
     "xdp.flow_entries: expected an integer in 8..4194304, got a string"},
    {"icmp too big rate beyond a million",
     "[xdp]\ninterface = 'eth0'\nicmp_too_big_rate = 2000000\n",
     "xdp.icmp_too_big_rate: expected an integer in 0..1000000, got 2000000"},
    {"flow idle timeout below a second", "[xdp]\ninterface = 'eth0'\nflow_idle_timeout_ms = 10\n",
     "bad.toml:3:24: xdp.flow_idle_timeout_ms: expected an integer in 1000..86400000, got 10"},
    {"relative control dir", "[daemon]\ncontrol_dir = 'run/ringlb'\n",
     "daemon.control_dir: expected an absolute path"},
    {"metrics listen without port", "[daemon]\nmetrics_listen = '127.0.0.1'\n",
     "bad.toml:2:18: daemon.metrics_listen: expected ip:port (\"192.0.2.1:80\" or "
     "\"[2001:db8::1]:80\"), got \"127.0.0.1\""},
    {"metrics listen by name", "[daemon]\nmetrics_listen = 'localhost:9464'\n",
     "bad.toml:2:18: daemon.metrics_listen: expected ip:port"},
    {"access log relative", "[daemon]\naccess_log = 'access.log'\n",
     "bad.toml:2:14: daemon.access_log: expected an absolute file path or \"journal\", got "
     "\"access.log\""},
    {"access log format", "[daemon]\naccess_log_format = 'csv'\n",
     "bad.toml:2:21: daemon.access_log_format: expected one of text, json"},
    {"log sample zero", "[daemon]\nlog_sample = 0\n",
     "bad.toml:2:14: daemon.log_sample: expected an integer in 1..1000000, got 0"},
    {"log buffer tiny", "[daemon]\nlog_buffer = 4\n",
     "bad.toml:2:14: daemon.log_buffer: expected an integer in 16..1048576, got 4"},
    {"metrics listen not a string", "[daemon]\nmetrics_listen = 9464\n",
     "bad.toml:2:18: daemon.metrics_listen: expected a string, got an integer"},
    {"forward mode with another policy",
     "[[vip]]\nname='w'\nlisten='192.0.2.1:80'\nmode='forward'\npolicy='random'\n[[vip.backend]]\n"
     "name='b'\naddress='192.0.2.2'",
     "vip[w].policy: forward mode always balances with ip_hash"},
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadCase& c, std::ostream* out) {
  *out << c.description;
}

class BadConfig : public testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, IsRejectedWithFileLineKeyAndExpectation) {
  const BadCase& c = GetParam();
  auto config = parse_config(c.text, "bad.toml");
  ASSERT_FALSE(config) << c.description;
  EXPECT_NE(config.error().message.find(c.expected), std::string::npos)
      << c.description << "\n  got: " << config.error().message << "\n  want: " << c.expected;
}

INSTANTIATE_TEST_SUITE_P(Cases, BadConfig, testing::ValuesIn(kBadCases), [](const auto& info) {
  std::string name = info.param.description;
  for (auto& ch : name) {
    ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  }
  return name;
});

TEST(Config, MetricsListenIsAnAddressOrNothing) {
  constexpr const char* kVip =
      "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'\n";
  auto absent = parse_config(kVip, "absent.toml");
  ASSERT_TRUE(absent) << absent.error().message;
  EXPECT_FALSE(absent->daemon.metrics_listen);
  auto empty = parse_config(std::string("[daemon]\nmetrics_listen = ''\n") + kVip, "empty.toml");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_FALSE(empty->daemon.metrics_listen);
  for (const char* address : {"127.0.0.1:9464", "[::1]:9464", "0.0.0.0:80"}) {
    auto set = parse_config(std::string("[daemon]\nmetrics_listen = '") + address + "'\n" + kVip,
                            "set.toml");
    ASSERT_TRUE(set) << set.error().message;
    ASSERT_TRUE(set->daemon.metrics_listen) << address;
    EXPECT_EQ(set->daemon.metrics_listen->to_string(), address);
  }
}

TEST(Config, TheConnectionLogIsOffUntilAskedFor) {
  constexpr const char* kVip =
      "[[vip]]\nname='w'\nlisten='127.0.0.1:1'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:2'\n";
  auto absent = parse_config(kVip, "absent.toml");
  ASSERT_TRUE(absent) << absent.error().message;
  EXPECT_EQ(absent->daemon.access_log.target, "");
  auto set = parse_config(std::string("[daemon]\naccess_log = '/var/log/ringlb/access.log'\n"
                                      "access_log_format = 'json'\nlog_sample = 10\n"
                                      "log_rate_limit = 1000\nlog_buffer = 65536\n") +
                              kVip,
                          "set.toml");
  ASSERT_TRUE(set) << set.error().message;
  const AccessLogConfig& log = set->daemon.access_log;
  EXPECT_EQ(log.target, "/var/log/ringlb/access.log");
  EXPECT_EQ(log.format, AccessLogFormat::json);
  EXPECT_EQ(log.sample, 10u);
  EXPECT_EQ(log.rate_limit, 1000u);
  EXPECT_EQ(log.buffer, 65536u);
  auto journal = parse_config(std::string("[daemon]\naccess_log = 'journal'\n") + kVip, "j.toml");
  ASSERT_TRUE(journal) << journal.error().message;
  EXPECT_EQ(journal->daemon.access_log.target, "journal");
}

TEST(Config, ReportsEveryErrorAtOnce) {
  auto config = parse_config(
      "[[vip]]\nname='w'\nlisten='nowhere'\npolicy='x'\n[[vip.backend]]\nname='b'\n"
      "address='127.0.0.1:2'\nweight=99999",
      "bad.toml");
  ASSERT_FALSE(config);
  const auto& m = config.error().message;
  EXPECT_NE(m.find("vip[w].listen"), std::string::npos) << m;
  EXPECT_NE(m.find("vip[w].policy"), std::string::npos) << m;
  EXPECT_NE(m.find("vip[w].backend[b].weight"), std::string::npos) << m;
}

TEST(Config, MissingFileNamesThePathAndCause) {
  auto config = load_config("/nonexistent/ringlb.toml");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "cannot read config /nonexistent/ringlb.toml: No such file or directory");
}

TEST(Config, TheDemoConfigIsValid) {
  auto config = load_config(RINGLB_SOURCE_DIR "/tools/demo/ringlb-demo.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_FALSE(config->vips.empty());
}

TEST(Config, TheInstalledExampleConfigIsValid) {
  auto config = load_config(RINGLB_SOURCE_DIR "/tools/demo/ringlb.example.toml");
  ASSERT_TRUE(config) << config.error().message;
  // No seed ships in it: a shared example seed would be a public one. The package writes
  // a fresh one into the real config; without one ringlbd warns.
  EXPECT_FALSE(config->daemon.hash_seed_set);
}

TEST(HashSeed, ParsesHexAndRejectsOther) {
  EXPECT_TRUE(parse_hash_seed("00112233445566778899AABBCCDDEEFF"));
  EXPECT_FALSE(parse_hash_seed("00112233445566778899aabbccddeeg0"));
  EXPECT_FALSE(parse_hash_seed(""));
}

TEST(XdpConfig, AbsentMeansDisabled) {
  auto config = parse_config(kValid, "test.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_FALSE(config->xdp.enabled);
}

TEST(XdpConfig, ParsesInterfaceAttachSteerAndSeed) {
  auto config = parse_config(
      "[xdp]\ninterface = \"veth0\"\nattach = \"generic\"\nsteer = false\n"
      "hash_seed = \"ffeeddccbbaa99887766554433221100\"\n"
      "[[vip]]\nname='d'\nlisten='192.0.2.10:53'\nprotocol='udp'\nmode='forward'\n"
      "[[vip.backend]]\nname='r1'\naddress='192.0.2.21'\n",
      "x.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_TRUE(config->xdp.enabled);
  EXPECT_EQ(config->xdp.interface, "veth0");
  EXPECT_EQ(config->xdp.attach, XdpAttach::generic);
  EXPECT_FALSE(config->xdp.steer);
  EXPECT_TRUE(config->daemon.hash_seed_set);
  EXPECT_EQ(config->daemon.hash_key.k0, 0xffeeddccbbaa9988ULL);
  EXPECT_EQ(config->daemon.hash_key.k1, 0x7766554433221100ULL);
}

TEST(XdpConfig, DefaultsToNativeWithSteer) {
  auto config = parse_config(
      "[xdp]\ninterface = \"eth0\"\n"
      "[[vip]]\nname='w'\nlisten='127.0.0.1:80'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:1'"
      "\n",
      "x.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->xdp.attach, XdpAttach::native);
  EXPECT_TRUE(config->xdp.steer);
  EXPECT_EQ(config->xdp.flow_entries, 65536u);
  EXPECT_EQ(config->xdp.flow_idle_timeout_ms, 60000u);
  EXPECT_FALSE(config->daemon.hash_seed_set);
}

TEST(XdpConfig, ReadsFlowEntries) {
  auto config = parse_config(
      "[xdp]\ninterface = \"eth0\"\nflow_entries = 1048576\nflow_idle_timeout_ms = 300000\n"
      "[[vip]]\nname='w'\nlisten='127.0.0.1:80'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:1'"
      "\n",
      "x.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->xdp.flow_entries, 1048576u);
  EXPECT_EQ(config->xdp.flow_idle_timeout_ms, 300000u);
}

TEST(XdpConfig, SameSeedInBothTablesIsAccepted) {
  auto config = parse_config(
      "[daemon]\nhash_seed = \"000102030405060708090a0b0c0d0e0f\"\n"
      "[xdp]\ninterface = \"eth0\"\nhash_seed = \"000102030405060708090A0B0C0D0E0F\"\n"
      "[[vip]]\nname='w'\nlisten='127.0.0.1:80'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:1'"
      "\n",
      "x.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->daemon.hash_key.k0, 0x0001020304050607ULL);
}

TEST(XdpConfig, RejectsConflictingSeedsBadAttachMissingInterfaceUnknownKey) {
  auto config = parse_config(
      "[daemon]\nhash_seed = \"000102030405060708090a0b0c0d0e0f\"\n"
      "[xdp]\nattach = \"offload\"\nhash_seed = \"ffeeddccbbaa99887766554433221100\"\n"
      "mtu = 1500\n"
      "[[vip]]\nname='w'\nlisten='127.0.0.1:80'\n[[vip.backend]]\nname='b'\naddress='127.0.0.1:1'"
      "\n",
      "x.toml");
  ASSERT_FALSE(config);
  const auto& m = config.error().message;
  EXPECT_NE(m.find("xdp.interface: missing (required)"), std::string::npos) << m;
  EXPECT_NE(m.find("xdp.attach: expected one of native, generic, got \"offload\""),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("xdp.hash_seed: differs from daemon.hash_seed"), std::string::npos) << m;
  EXPECT_NE(m.find("xdp.mtu: unknown key"), std::string::npos) << m;
}

// The file holding hash_seed is treated as ssh treats a private key.
TEST(SecretFile, OnlyAPrivateFileOfRootOrTheDaemonPasses) {
  char path[] = "/tmp/ringlb-secret-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ::chmod(path, 0600);
  const unsigned me = ::geteuid();
  EXPECT_TRUE(check_secret_file(path, me));
  for (const mode_t mode : {0640, 0604, 0620, 0644, 0666}) {
    ::chmod(path, mode);
    auto checked = check_secret_file(path, me);
    ASSERT_FALSE(checked) << std::oct << mode;
    EXPECT_NE(checked.error().message.find("open to group or others"), std::string::npos);
    EXPECT_NE(checked.error().message.find(std::string("chmod 600 ") + path), std::string::npos)
        << checked.error().message;
  }
  ::chmod(path, 0600);
  if (me == 0) {  // another owner, neither root nor the daemon
    ASSERT_EQ(::chown(path, 12345, 12345), 0);
    auto checked = check_secret_file(path, 4242);
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().message.find("belongs to uid 12345"), std::string::npos)
        << checked.error().message;
    EXPECT_TRUE(check_secret_file(path, 12345));  // the daemon's own file
  }
  ::unlink(path);
  EXPECT_FALSE(check_secret_file(path, me));  // gone: an error, not a pass
}

TEST(SecretFile, NewSeedsAreValidAndDiffer) {
  auto a = random_hash_seed();
  auto b = random_hash_seed();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 32u);
  EXPECT_TRUE(parse_hash_seed(*a).has_value());
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace ringlb
