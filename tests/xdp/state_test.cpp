// Maps are the state (include/ringlb/xdp/xdp.h): validation with the config's messages
// (XdpStateValidate, label unit, no root), and apply_state/read_state on a loaded,
// unpinned program (XdpStateMaps, label bpf, root): what attach writes reads back, an
// edit rebuilds the table with the loader's builder, a bad edit writes nothing.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb {
namespace {

// Backends on loopback addresses: apply_state asks the kernel to resolve each backend's
// next hop with an empty datagram, which then never leaves the host.
constexpr const char* kConfig = R"(
[daemon]
maglev_table_size = 1031
hash_seed = "000102030405060708090a0b0c0d0e0f"
[[vip]]
name = "web"
listen = "10.0.0.10:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "127.0.1.1"
[[vip.backend]]
name = "b2"
address = "127.0.1.2"
weight = 3
[[vip.backend]]
name = "b3"
address = "127.0.1.3"
state = "drain"
[[vip]]
name = "dns"
listen = "[fd00::10]:53"
protocol = "udp"
mode = "forward"
[[vip.backend]]
name = "r1"
address = "::1"
[[vip]]
name = "app"
listen = "127.0.0.1:8080"
[[vip.backend]]
name = "a1"
address = "127.0.0.1:9000"
)";

Config test_config() {
  auto config = parse_config(kConfig, "state_test.toml");
  EXPECT_TRUE(config) << config.error().message;
  return *config;
}

xdp::XdpState test_state() {
  const Config config = test_config();
  return xdp::state_from_config(config, config.daemon.maglev_table_size, config.daemon.hash_key, 0);
}

std::string validation_error(const xdp::XdpState& state) {
  auto valid = xdp::validate_state(state);
  return valid ? std::string() : valid.error().message;
}

// A TCP VIP key on 10.x.y.z port 80 (network order), with vip id `id`.
std::pair<ringlb_vip_key, ringlb_vip_info> vip_entry(uint32_t n, uint32_t id) {
  ringlb_vip_key key{};
  key.addr[0] = htonl(0x0a000000u | n);
  key.port = htons(80);
  key.proto = IPPROTO_TCP;
  key.family = RINGLB_FAMILY_V4;
  return {key, ringlb_vip_info{.vip_id = id, .mode = RINGLB_MODE_FORWARD, .epoch = 1}};
}

uint32_t first_slot(const ringlb_vip_key& key) {
  return ringlb_vip_index_slot(&key);
}

// What the program's probe finds for `key` in `index`: the info, or nullopt.
std::optional<ringlb_vip_info> probe(const std::vector<ringlb_vip_slot>& index,
                                     const ringlb_vip_key& key) {
  const uint32_t first = first_slot(key);
  for (uint32_t i = 0; i < RINGLB_VIP_INDEX_PROBES; ++i) {
    const ringlb_vip_slot& slot = index[(first + i) & (RINGLB_VIP_INDEX_SLOTS - 1)];
    if (slot.key.family == RINGLB_FAMILY_NONE) {
      break;
    }
    if (std::memcmp(&slot.key, &key, sizeof(key)) == 0) {
      return slot.info;
    }
  }
  return std::nullopt;
}

TEST(XdpStateValidate, TheVipIndexHoldsEveryVipWithinItsProbeOrCountsIt) {
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> vips;
  for (uint32_t n = 0; n < RINGLB_MAX_VIPS; ++n) {
    vips.push_back(vip_entry(n * 7919 + 1, n));
  }
  const auto index = xdp::build_vip_index(vips);
  ASSERT_EQ(index.size(), RINGLB_VIP_INDEX_ENTRIES);
  uint32_t found = 0;
  for (const auto& [key, info] : vips) {
    if (auto got = probe(index, key)) {
      EXPECT_EQ(got->vip_id, info.vip_id);
      ++found;
    }
  }
  uint32_t used = 0;
  for (uint32_t i = 0; i < RINGLB_VIP_INDEX_SLOTS; ++i) {
    used += index[i].key.family != RINGLB_FAMILY_NONE ? 1 : 0;
  }
  EXPECT_EQ(used, found);  // no VIP twice, nothing else
  EXPECT_EQ(index[RINGLB_VIP_INDEX_SLOTS].info.vip_id, RINGLB_MAX_VIPS - found);
  EXPECT_EQ(index[RINGLB_VIP_INDEX_SLOTS].key.family, RINGLB_FAMILY_NONE);
}

TEST(XdpStateValidate, AVipBeyondItsProbeIsLeftToTheHashAndCounted) {
  // PROBES + 1 VIPs whose probes all start at one slot: the last one does not fit.
  std::map<uint32_t, std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>>> by_slot;
  std::vector<std::pair<ringlb_vip_key, ringlb_vip_info>> crowd;
  for (uint32_t n = 1; crowd.empty(); ++n) {
    auto entry = vip_entry(n, n);
    auto& same = by_slot[first_slot(entry.first)];
    same.push_back(entry);
    if (same.size() == RINGLB_VIP_INDEX_PROBES + 1) {
      crowd = same;
    }
  }
  const auto index = xdp::build_vip_index(crowd);
  for (uint32_t i = 0; i < RINGLB_VIP_INDEX_PROBES; ++i) {
    ASSERT_TRUE(probe(index, crowd[i].first)) << i;
  }
  EXPECT_FALSE(probe(index, crowd.back().first));
  EXPECT_EQ(index[RINGLB_VIP_INDEX_SLOTS].info.vip_id, 1u);
}

TEST(XdpStateValidate, ProxyVipsStayOutUnlessSteered) {
  const Config config = test_config();
  EXPECT_EQ(xdp::state_from_config(config, 1031, config.daemon.hash_key, 0).vips.size(), 2u);
  const auto steered = xdp::state_from_config(config, 1031, config.daemon.hash_key, 2);
  ASSERT_EQ(steered.vips.size(), 3u);
  EXPECT_TRUE(steered.vips[2].backends.empty()) << "the proxy balances a steered VIP";
  EXPECT_EQ(validation_error(steered), "");
}

TEST(XdpStateValidate, WeightOutOfRangeHasTheConfigsMessage) {
  auto state = test_state();
  state.vips[0].backends[0].weight = 20000;
  EXPECT_EQ(validation_error(state),
            "vip[web].backend[b1].weight: expected an integer in 0..10000, got 20000");
}

TEST(XdpStateValidate, DuplicateNamesAndAddressesAreNamed) {
  auto state = test_state();
  state.vips[0].backends.push_back(state.vips[0].backends[0]);
  state.vips[0].backends.back().address.ip = *IpAddress::parse("127.0.1.9");
  EXPECT_EQ(validation_error(state),
            "vip[web].backend[b1].name: duplicate backend name \"b1\" in this vip");
  state.vips[0].backends.back().name = "b4";
  state.vips[0].backends.back().address.ip = *IpAddress::parse("127.0.1.2");
  EXPECT_EQ(validation_error(state),
            "vip[web].backend[b4].address: 127.0.1.2 is already backend b2 of this vip");
}

TEST(XdpStateValidate, VipNamesListenAddressesAndCapacity) {
  auto state = test_state();
  state.vips.push_back(state.vips[0]);
  EXPECT_EQ(validation_error(state),
            "vip[web].name: duplicate vip name \"web\"\n"
            "vip[web].listen: another vip already listens on 10.0.0.10:80/tcp");
  state.vips.back().name = "bad/name";
  state.vips.back().listen.port = 81;
  EXPECT_EQ(validation_error(state),
            "vip[bad/name].name: expected 1..64 characters of [A-Za-z0-9_.-], got \"bad/name\"");
  state = test_state();
  for (uint16_t i = 0; i < RINGLB_MAX_VIPS; ++i) {
    VipSpec vip = state.vips[0];
    vip.name = "v" + std::to_string(i);
    vip.listen.port = static_cast<uint16_t>(1000 + i);
    vip.backends.clear();
    state.vips.push_back(vip);
  }
  EXPECT_EQ(validation_error(state), "vip: more than 512 VIPs (the maps' capacity)");
}

// A loaded program without pins: its maps are this process's alone.
class XdpStateMaps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root (loads the XDP program)";
    }
    config_ = test_config();
    xdp::LoadOptions options = xdp::load_options(config_);
    options.pin_root.clear();
    options.flow_entries = 1024;
    auto program = xdp::XdpProgram::load(options);
    if (!program) {
      GTEST_SKIP() << "cannot load the XDP program: " << program.error().message;
    }
    program_.emplace(std::move(*program));
    ASSERT_TRUE(program_->apply(config_));
    maps_ = program_->map_fds();
  }

  // The pinned table of `vip` as backend addresses, slot by slot.
  std::vector<std::string> table_addresses(const VipSpec& vip) {
    auto id = xdp::pinned_vip_id(maps_, vip);
    EXPECT_TRUE(id) << id.error().message;
    auto table = xdp::read_maglev_table(maps_, *id);
    auto addresses = xdp::read_backend_addresses(maps_);
    EXPECT_TRUE(table && addresses);
    std::vector<std::string> out;
    for (uint32_t backend_id : *table) {
      out.push_back(addresses->at(backend_id).to_string());
    }
    return out;
  }

  // The table the loader's builder gives `vip`, as backend addresses.
  std::vector<std::string> built_addresses(const VipSpec& vip,
                                           const xdp::BackendFilter& eligible = {}) {
    std::vector<std::string> out;
    for (uint32_t index : xdp::build_forward_table(vip, 1031, eligible).slots) {
      out.push_back(vip.backends[index].address.ip.to_string());
    }
    return out;
  }

  xdp::XdpState read() {
    auto state = xdp::read_state(maps_);
    EXPECT_TRUE(state) << state.error().message;
    return *state;
  }

  Config config_;
  std::optional<xdp::XdpProgram> program_;
  xdp::MapFds maps_;
};

TEST_F(XdpStateMaps, WhatAttachWritesReadsBack) {
  const xdp::XdpState want = test_state();
  const xdp::XdpState got = read();
  EXPECT_EQ(got.maglev_table_size, 1031u);
  EXPECT_EQ(got.hash_key.k0, want.hash_key.k0);
  EXPECT_EQ(got.hash_key.k1, want.hash_key.k1);
  ASSERT_EQ(got.vips.size(), want.vips.size());
  for (size_t v = 0; v < want.vips.size(); ++v) {
    SCOPED_TRACE(want.vips[v].name);
    EXPECT_EQ(got.vips[v].name, want.vips[v].name);
    EXPECT_EQ(got.vips[v].listen, want.vips[v].listen);
    EXPECT_EQ(got.vips[v].protocol, want.vips[v].protocol);
    EXPECT_EQ(got.vips[v].mode, want.vips[v].mode);
    ASSERT_EQ(got.vips[v].backends.size(), want.vips[v].backends.size());
    for (size_t b = 0; b < want.vips[v].backends.size(); ++b) {
      EXPECT_EQ(got.vips[v].backends[b].name, want.vips[v].backends[b].name);
      EXPECT_EQ(got.vips[v].backends[b].address, want.vips[v].backends[b].address);
      EXPECT_EQ(got.vips[v].backends[b].weight, want.vips[v].backends[b].weight);
      EXPECT_EQ(got.vips[v].backends[b].state, want.vips[v].backends[b].state);
    }
    EXPECT_EQ(table_addresses(got.vips[v]), built_addresses(want.vips[v]));
  }
}

TEST_F(XdpStateMaps, AnEditRebuildsTheTableWithTheLoadersBuilder) {
  xdp::XdpState state = read();
  const auto before = table_addresses(state.vips[0]);
  state.vips[0].backends[0].weight = 5;
  state.vips[0].backends[2].state = AdminState::up;
  ASSERT_TRUE(xdp::apply_state(maps_, state));
  const xdp::XdpState after = read();
  EXPECT_EQ(after.vips[0].backends[0].weight, 5u);
  EXPECT_EQ(after.vips[0].backends[2].state, AdminState::up);
  EXPECT_EQ(table_addresses(after.vips[0]), built_addresses(state.vips[0]));
  EXPECT_NE(table_addresses(after.vips[0]), before);
}

TEST_F(XdpStateMaps, ABadEditWritesNothing) {
  const xdp::XdpState before = read();
  const auto table = table_addresses(before.vips[0]);
  xdp::XdpState bad = before;
  bad.vips[0].backends[0].weight = 2;                       // would change the table...
  bad.vips[1].backends.push_back(bad.vips[1].backends[0]);  // ...but this is refused
  auto applied = xdp::apply_state(maps_, bad);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().message,
            "vip[dns].backend[r1].name: duplicate backend name \"r1\" in this vip\n"
            "vip[dns].backend[r1].address: ::1 is already backend r1 of this vip");
  EXPECT_EQ(read().vips[0].backends[0].weight, 1u);
  EXPECT_EQ(table_addresses(before.vips[0]), table);
}

TEST_F(XdpStateMaps, AnIneligibleBackendLeavesTheTable) {
  const xdp::BackendFilter not_b2 = [](const VipSpec&, const BackendSpec& b) {
    return b.name != "b2";
  };
  const xdp::XdpState state = read();
  ASSERT_TRUE(xdp::apply_state(maps_, state, not_b2));
  const auto table = table_addresses(state.vips[0]);
  EXPECT_EQ(table, built_addresses(state.vips[0], not_b2));
  EXPECT_EQ(std::count(table.begin(), table.end(), "127.0.1.2"), 0);
  EXPECT_EQ(std::count(table.begin(), table.end(), "127.0.1.1"), 1031);
}

TEST_F(XdpStateMaps, ARemovedVipIsForgotten) {
  xdp::XdpState state = read();
  const VipSpec web = state.vips[0];
  state.vips.erase(state.vips.begin());
  ASSERT_TRUE(xdp::apply_state(maps_, state));
  const xdp::XdpState after = read();
  ASSERT_EQ(after.vips.size(), 1u);
  EXPECT_EQ(after.vips[0].name, "dns");
  EXPECT_FALSE(xdp::pinned_vip_id(maps_, web));
}

// The index the program reads holds exactly the VIPs of `vips`, each where its probe finds
// it, before and after an apply that removes one.
TEST_F(XdpStateMaps, TheVipIndexFollowsTheVipsMap) {
  auto check = [this](size_t want) {
    auto index = xdp::read_vip_index(maps_);
    ASSERT_TRUE(index) << index.error().message;
    size_t in_map = 0;
    ringlb_vip_key key{};
    ringlb_vip_key next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(maps_.vips, prev, &next) == 0) {
      ringlb_vip_info info{};
      ASSERT_EQ(bpf_map_lookup_elem(maps_.vips, &next, &info), 0);
      auto found = probe(*index, next);
      ASSERT_TRUE(found) << "vip id " << info.vip_id << " is not in the index";
      EXPECT_EQ(found->vip_id, info.vip_id);
      EXPECT_EQ(found->mode, info.mode);
      EXPECT_EQ(found->epoch, info.epoch);
      ++in_map;
      key = next;
      prev = &key;
    }
    size_t used = 0;
    for (uint32_t i = 0; i < RINGLB_VIP_INDEX_SLOTS; ++i) {
      used += (*index)[i].key.family != RINGLB_FAMILY_NONE ? 1 : 0;
    }
    EXPECT_EQ(in_map, want);
    EXPECT_EQ(used, want);
    EXPECT_EQ((*index)[RINGLB_VIP_INDEX_SLOTS].info.vip_id, 0u);
  };
  xdp::XdpState state = read();
  check(state.vips.size());
  state.vips.erase(state.vips.begin());
  ASSERT_TRUE(xdp::apply_state(maps_, state));
  check(state.vips.size());
}

}  // namespace
}  // namespace ringlb

namespace ringlb {
namespace {

// 10000 members leave and 10000 others come in one apply: the record never holds both
// (16384 fit), so the apply completes.
TEST_F(XdpStateMaps, ReplacingManyBackendsNeverOverfillsTheRecord) {
  auto many = [](const std::string& name, uint16_t port) {
    VipSpec vip;
    vip.name = name;
    vip.listen = *SocketAddress::parse("10.0.0.20:" + std::to_string(port));
    vip.mode = Mode::forward;
    vip.policy = PolicyKind::ip_hash;
    for (uint32_t i = 0; i < 10000; ++i) {
      const std::string address =
          "127.2." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
      // down: recorded, but no backend id (the backends map holds 4096 addresses)
      vip.backends.push_back(BackendSpec{.name = "b" + std::to_string(i),
                                         .address = {.ip = *IpAddress::parse(address), .port = 0},
                                         .weight = 1,
                                         .state = AdminState::down});
    }
    return vip;
  };
  xdp::XdpState state = read();
  state.vips.push_back(many("old", 1));
  ASSERT_TRUE(xdp::apply_state(maps_, state));
  state.vips.back() = many("new", 2);
  auto applied = xdp::apply_state(maps_, state);
  ASSERT_TRUE(applied) << applied.error().message;
  const xdp::XdpState after = read();
  ASSERT_EQ(after.vips.back().name, "new");
  EXPECT_EQ(after.vips.back().backends.size(), 10000u);
}

}  // namespace
}  // namespace ringlb
