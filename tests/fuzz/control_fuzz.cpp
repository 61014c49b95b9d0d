// Fuzz target: control-filesystem writes (ControlTree, the FUSE layer's semantics) on a
// Runtime built from a small config. An input is up to kMaxOps operations separated by
// NUL bytes; each is an op letter, a path, '=', and the value:
//
//   w/vips/web/backends/a/weight=7\n     write
//   m/vips/web/backends/c=               mkdir
//   d/vips/web/backends/c=               rmdir
//
// Every operation must either succeed or fail and change nothing: after a failure the
// running config is the same snapshot and every file of the tree reads as before. After
// a successful write, writing back what the file shows must succeed and change nothing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "ringlb/config/config.h"
#include "ringlb/control/tree.h"
#include "ringlb/fd.h"

namespace ringlb {
namespace {

constexpr size_t kMaxOps = 16;

// A loopback port free right now, for the proxy VIP's listener.
uint16_t free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "no loopback port: %s\n", std::strerror(errno));
    std::abort();
  }
  return ntohs(addr.sin_port);
}

// Two proxy VIPs (IPv4 and IPv6 backends) and a forward VIP: every kind of directory.
const Config& base_config() {
  static const Config config = [] {
    const std::string port = std::to_string(free_port());
    auto parsed = parse_config(R"([daemon]
drain_timeout_ms = 20
maglev_table_size = 251
[[vip]]
name = "web"
listen = "127.0.0.1:)" + port + R"("
policy = "weighted"
[[vip.backend]]
name = "a"
address = "127.0.0.1:9001"
weight = 5
[[vip.backend]]
name = "b"
address = "127.0.0.1:9002"
state = "drain"
[[vip]]
name = "one"
listen = "127.0.0.2:)" + port + R"("
policy = "ip_hash"
[[vip.backend]]
name = "only"
address = "[::1]:9003"
[[vip]]
name = "fwd"
listen = "10.0.0.10:80"
mode = "forward"
[[vip.backend]]
name = "f1"
address = "10.200.0.1"
)",
                               "control_fuzz.toml");
    if (!parsed) {
      std::fprintf(stderr, "%s\n", parsed.error().message.c_str());
      std::abort();
    }
    return std::move(*parsed);
  }();
  return config;
}

Runtime& runtime() {
  static Runtime runtime{1};
  return runtime;
}

// Everything an operator can read that a write may change: every file under /vips
// (counters there stay 0, no traffic flows), with errors as "<errno>".
void dump(const control::ControlTree& tree, const std::string& path, std::string& out) {
  auto info = tree.stat(path);
  if (!info) {
    out += path + " <" + std::to_string(info.error().code) + ">\n";
    return;
  }
  if (info->kind == control::NodeKind::directory) {
    auto names = tree.list(path);
    FUZZ_CHECK(names.ok(), "cannot list %s", path.c_str());
    for (const auto& name : *names) {
      dump(tree, path + "/" + name, out);
    }
    return;
  }
  if (info->readable) {
    auto value = tree.read(path);
    out += path + " = " + (value ? *value : "<" + std::to_string(value.error().code) + ">\n");
  }
}

std::string dump(const control::ControlTree& tree) {
  std::string out;
  dump(tree, "/vips", out);
  return out;
}

}  // namespace
}  // namespace ringlb

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringlb;
  // Each input starts from the base config and a fresh tree (no pending backends).
  auto reset = runtime().apply(base_config());
  FUZZ_CHECK(reset.ok(), "cannot apply the base config: %s", reset.error().message.c_str());
  control::ControlTree tree(
      runtime(), [] { return runtime().apply(base_config()); }, "/sys/fs/bpf/ringlb-fuzz-none");

  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The tree as it was before the current operation: dumped again only after one
  // succeeds (after a failure it must not have changed).
  std::string tree_before = dump(tree);
  for (size_t op = 0; op < kMaxOps && !input.empty(); ++op) {
    const size_t end = input.find('\0');
    std::string_view record = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
    if (record.empty()) {
      continue;
    }
    const char kind = record.front();
    record.remove_prefix(1);
    const size_t eq = record.find('=');
    const std::string_view path = record.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : record.substr(eq + 1);

    const auto config_before = runtime().config();
    Result<void> done;
    switch (kind) {
      case 'm':
        done = tree.make_directory(path);
        break;
      case 'd':
        done = tree.remove_directory(path);
        break;
      default:
        done = tree.write(path, value);
        break;
    }
    if (done) {
      tree_before = dump(tree);
      // What a readable file shows after a write is a value it accepts: writing it back
      // succeeds and changes nothing (`cat f > f` is harmless).
      const auto info = tree.stat(path);
      if (kind == 'w' && info && info->readable && info->writable) {
        const auto shown = tree.read(path);
        FUZZ_CHECK(shown.ok(), "cannot read back %s", std::string(path).c_str());
        const auto again = tree.write(path, *shown);
        FUZZ_CHECK(again.ok(), "writing back \"%s\" to %s failed: %s", shown->c_str(),
                   std::string(path).c_str(), again.error().message.c_str());
        const std::string tree_again = dump(tree);
        FUZZ_CHECK(tree_again == tree_before, "writing back %s changed the tree",
                   std::string(path).c_str());
      }
      continue;
    }
    const std::string what(path);
    FUZZ_CHECK(done.error().code > 0, "%c %s failed without an errno: %s", kind, what.c_str(),
               done.error().message.c_str());
    FUZZ_CHECK(runtime().config() == config_before, "%c %s failed (%s) but published a new config",
               kind, what.c_str(), done.error().message.c_str());
    const std::string tree_after = dump(tree);
    FUZZ_CHECK(tree_after == tree_before, "%c %s failed (%s) but the tree changed:\n%s---\n%s",
               kind, what.c_str(), done.error().message.c_str(), tree_before.c_str(),
               tree_after.c_str());
  }
  return 0;
}
