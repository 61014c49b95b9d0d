// apply_state()'s pure plan (state_plan.h), without root or a loaded program: which ids,
// epochs, records and tables an apply writes, given what the maps hold. And the pins
// `ringlb detach --unpin` removes, read from the skeleton's own map list.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/xdp/xdp.h"

namespace ringlb {
namespace {

// Forward VIPs on 10.0.0.x:80 with backends on 192.0.2.x; `extra` is appended to the
// config (more [[vip]] tables).
std::string forward_vip(const std::string& name, int vip_octet, std::vector<int> backends,
                        const std::string& mode = "forward") {
  std::string text = "[[vip]]\nname = \"" + name + "\"\nlisten = \"10.0.0." +
                     std::to_string(vip_octet) + ":80\"\nmode = \"" + mode + "\"\n";
  for (int b : backends) {
    text += "[[vip.backend]]\nname = \"b" + std::to_string(b) + "\"\naddress = \"192.0.2." +
            std::to_string(b) + (mode == "forward" ? "\"\n" : ":8080\"\n");
  }
  return text;
}

xdp::XdpState state_of(const std::string& vips) {
  auto config = parse_config("[daemon]\nmaglev_table_size = 251\n" + vips, "plan_test.toml");
  EXPECT_TRUE(config) << config.error().message;
  if (!config) {
    return {};
  }
  return xdp::state_from_config(*config, 251, config->daemon.hash_key, 2);
}

// What the maps hold after `plan` was written (as apply_state's writes leave them).
xdp::MapContents contents_after(const xdp::StatePlan& plan, uint32_t epoch_of_new = 7) {
  xdp::MapContents maps;
  for (const auto& v : plan.vips) {
    ringlb_vip_info info = v.info;
    info.epoch = v.new_epoch ? epoch_of_new : info.epoch;
    maps.vips.emplace_back(v.key, info);
    maps.member_counts[v.info.vip_id] = xdp::member_count(*v.spec);
  }
  maps.backends = plan.backend_ids;
  maps.generation = plan.lb_state.generation;
  return maps;
}

const xdp::PlannedVip& planned(const xdp::StatePlan& plan, const std::string& name) {
  auto it = std::find_if(plan.vips.begin(), plan.vips.end(),
                         [&](const xdp::PlannedVip& v) { return v.spec->name == name; });
  EXPECT_NE(it, plan.vips.end()) << name;
  return *it;
}

uint32_t backend_id(const xdp::StatePlan& plan, const char* address) {
  return plan.backend_ids.at(xdp::address_key(*IpAddress::parse(address)));
}

TEST(XdpStatePlan, EmptyMapsGiveTheLowestIdsAndNewEpochs) {
  const auto state = state_of(forward_vip("web", 10, {1, 2}) + forward_vip("api", 11, {2, 3}));
  auto plan = xdp::plan_state({}, state);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->vips.size(), 2u);
  EXPECT_EQ(planned(*plan, "web").info.vip_id, 0u);
  EXPECT_EQ(planned(*plan, "api").info.vip_id, 1u);
  EXPECT_TRUE(planned(*plan, "web").new_epoch);
  EXPECT_TRUE(planned(*plan, "api").new_epoch);
  // Three distinct addresses (192.0.2.2 is shared), ids 0..2.
  ASSERT_EQ(plan->backend_ids.size(), 3u);
  EXPECT_EQ(backend_id(*plan, "192.0.2.1"), 0u);
  EXPECT_EQ(backend_id(*plan, "192.0.2.2"), 1u);
  EXPECT_EQ(backend_id(*plan, "192.0.2.3"), 2u);
  EXPECT_EQ(plan->lb_state.generation, 1u);
  EXPECT_EQ(plan->lb_state.maglev_table_size, 251u);
  EXPECT_EQ(plan->lb_state.magic, RINGLB_STATE_MAGIC);
  EXPECT_TRUE(plan->removed_vips.empty());
  EXPECT_TRUE(plan->released_backend_ids.empty());
  // The pre-filter has each VIP's bit.
  for (const auto& v : plan->vips) {
    const uint32_t bit = ringlb_vip_filter_bit(v.key.addr);
    EXPECT_NE(plan->filter.bits[bit / 64] & (1ull << (bit % 64)), 0u) << v.spec->name;
  }
}

TEST(XdpStatePlan, KeptKeysAndAddressesKeepTheirIdsAndEpochs) {
  const auto first = state_of(forward_vip("web", 10, {1, 2}) + forward_vip("api", 11, {3}));
  auto before = xdp::plan_state({}, first);
  ASSERT_TRUE(before);
  const auto maps = contents_after(*before);
  // api leaves, web gains b4 and loses b1, a new VIP arrives: web keeps id 0 and its epoch,
  // 192.0.2.2 keeps its id, the new VIP takes the freed id 1, 192.0.2.4 the lowest free id.
  const auto second = state_of(forward_vip("web", 10, {2, 4}) + forward_vip("new", 12, {5}));
  auto plan = xdp::plan_state(maps, second);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(planned(*plan, "web").info.vip_id, 0u);
  EXPECT_FALSE(planned(*plan, "web").new_epoch);
  EXPECT_EQ(planned(*plan, "web").info.epoch, 7u);
  EXPECT_EQ(planned(*plan, "new").info.vip_id, 1u);
  EXPECT_TRUE(planned(*plan, "new").new_epoch);
  EXPECT_EQ(backend_id(*plan, "192.0.2.2"), backend_id(*before, "192.0.2.2"));
  EXPECT_EQ(backend_id(*plan, "192.0.2.4"), 0u);  // 192.0.2.1's old id, now free
  EXPECT_EQ(backend_id(*plan, "192.0.2.5"), 2u);  // 192.0.2.3's old id
  EXPECT_EQ(plan->lb_state.generation, 2u);
  // api's key left; its id went to `new`, so the id is not retired (no epoch move).
  ASSERT_EQ(plan->removed_vips.size(), 1u);
  EXPECT_EQ(plan->removed_vips[0].vip_id, 1u);
  EXPECT_FALSE(plan->removed_vips[0].id_retired);
  std::vector<uint32_t> released = plan->released_backend_ids;
  std::sort(released.begin(), released.end());
  EXPECT_EQ(released, (std::vector<uint32_t>{0, 2}));  // 192.0.2.1 and 192.0.2.3
}

TEST(XdpStatePlan, AModeChangeMovesTheEpochAndKeepsTheId) {
  const auto first = state_of(forward_vip("web", 10, {1}));
  auto before = xdp::plan_state({}, first);
  ASSERT_TRUE(before);
  const auto second = state_of(forward_vip("web", 10, {1}, "proxy"));
  auto plan = xdp::plan_state(contents_after(*before), second);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(planned(*plan, "web").info.vip_id, 0u);
  EXPECT_TRUE(planned(*plan, "web").new_epoch);
  EXPECT_EQ(planned(*plan, "web").info.mode, RINGLB_MODE_STEER);
  // A steered proxy VIP records no members and its backends take no id.
  EXPECT_TRUE(plan->backend_ids.empty());
  ASSERT_EQ(plan->member_trims.size(), 1u);
  EXPECT_EQ(plan->member_trims[0].from, 0u);
  EXPECT_EQ(plan->member_trims[0].to, 1u);
}

TEST(XdpStatePlan, ARemovedVipIsRetiredAndItsRecordForgotten) {
  const auto first = state_of(forward_vip("web", 10, {1}) + forward_vip("api", 11, {2, 3}));
  auto before = xdp::plan_state({}, first);
  ASSERT_TRUE(before);
  const auto second = state_of(forward_vip("web", 10, {1}));  // the plan points into it
  auto plan = xdp::plan_state(contents_after(*before), second);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->removed_vips.size(), 1u);
  EXPECT_EQ(plan->removed_vips[0].vip_id, 1u);
  EXPECT_TRUE(plan->removed_vips[0].id_retired);
  ASSERT_EQ(plan->forgotten_vips.size(), 1u);
  EXPECT_EQ(plan->forgotten_vips[0].vip_id, 1u);
  EXPECT_EQ(plan->forgotten_vips[0].member_count, 2u);
  EXPECT_TRUE(plan->member_trims.empty());
}

TEST(XdpStatePlan, ShrinkingBackendsTrimsTheRecordPastTheNewCount) {
  const auto first = state_of(forward_vip("web", 10, {1, 2, 3}));
  auto before = xdp::plan_state({}, first);
  ASSERT_TRUE(before);
  const auto second = state_of(forward_vip("web", 10, {1}));  // the plan points into it
  auto plan = xdp::plan_state(contents_after(*before), second);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->member_trims.size(), 1u);
  EXPECT_EQ(plan->member_trims[0].vip_id, 0u);
  EXPECT_EQ(plan->member_trims[0].from, 1u);
  EXPECT_EQ(plan->member_trims[0].to, 3u);
}

TEST(XdpStatePlan, RunningOutOfVipIdsFailsWithoutAPlan) {
  // The maps hold RINGLB_MAX_VIPS VIPs on other keys with every id: a new key has no id.
  xdp::MapContents full;
  for (uint32_t id = 0; id < RINGLB_MAX_VIPS; ++id) {
    ringlb_vip_key key{};
    key.addr[0] = htonl(0x0b000000u | id);
    key.port = htons(80);
    key.proto = 6;
    key.family = RINGLB_FAMILY_V4;
    full.vips.emplace_back(key,
                           ringlb_vip_info{.vip_id = id, .mode = RINGLB_MODE_FORWARD, .epoch = 1});
  }
  // Removed keys free their ids: the plan reuses them rather than failing.
  const auto web = state_of(forward_vip("web", 10, {1}));
  auto reused = xdp::plan_state(full, web);
  ASSERT_TRUE(reused) << reused.error().message;
  EXPECT_EQ(planned(*reused, "web").info.vip_id, 0u);
  // More VIPs in the state than ids.
  std::string many;
  for (uint32_t i = 0; i <= RINGLB_MAX_VIPS; ++i) {
    many += "[[vip]]\nname = \"v" + std::to_string(i) + "\"\nlisten = \"10.1." +
            std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
            ":80\"\nmode = \"forward\"\n[[vip.backend]]\nname = \"b\"\naddress = \"192.0.2.1\"\n";
  }
  auto config = parse_config(many, "many.toml");
  ASSERT_TRUE(config) << config.error().message;
  const auto state = xdp::state_from_config(*config, 251, config->daemon.hash_key, 0);
  auto failed = xdp::plan_state({}, state);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, EINVAL);
  EXPECT_NE(failed.error().message.find("VIPs"), std::string::npos) << failed.error().message;
}

TEST(XdpStatePlan, ThePlannedTableIsTheBuildersTableInBackendIds) {
  const auto state = state_of(forward_vip("web", 10, {1, 2, 3}));
  auto plan = xdp::plan_state({}, state);
  ASSERT_TRUE(plan);
  const auto& web = planned(*plan, "web");
  const auto table = xdp::planned_table(*plan, web, {});
  const auto slots = xdp::build_forward_table(*web.spec, 251).slots;
  ASSERT_EQ(table.size(), 251u);
  for (size_t i = 0; i < table.size(); ++i) {
    const auto& backend = web.spec->backends[slots[i]];
    ASSERT_EQ(table[i], plan->backend_ids.at(xdp::address_key(backend.address.ip))) << i;
  }
  // No eligible backend: no table.
  const auto none =
      xdp::planned_table(*plan, web, [](const VipSpec&, const BackendSpec&) { return false; });
  EXPECT_TRUE(none.empty());
}

// A VIP key as `vips` has it.
ringlb_vip_key vip_key(const char* addr, uint16_t port, uint8_t proto) {
  ringlb_vip_key key{};
  const auto ip = IpAddress::parse(addr);
  EXPECT_TRUE(ip) << addr;
  key.family = ip && !ip->is_v4() ? RINGLB_FAMILY_V6 : RINGLB_FAMILY_V4;
  if (ip) {
    std::memcpy(key.addr, ip->bytes(), ip->size());
  }
  key.port = htons(port);
  key.proto = proto;
  return key;
}

TEST(XdpStatePlan, FragmentsGoToTheOneForwardVipOfAnAddressAndProtocol) {
  const ringlb_vip_info web{.vip_id = 1, .mode = RINGLB_MODE_FORWARD, .epoch = 3};
  const ringlb_vip_info dns{.vip_id = 2, .mode = RINGLB_MODE_FORWARD, .epoch = 1};
  const ringlb_vip_info tls{.vip_id = 3, .mode = RINGLB_MODE_FORWARD, .epoch = 1};
  const ringlb_vip_info app{.vip_id = 4, .mode = RINGLB_MODE_STEER, .epoch = 1};
  const ringlb_vip_info web6{.vip_id = 5, .mode = RINGLB_MODE_FORWARD, .epoch = 1};
  const auto entries = xdp::fragment_vips({
      {vip_key("10.0.0.10", 80, IPPROTO_TCP), web},
      {vip_key("10.0.0.10", 53, IPPROTO_UDP), dns},
      {vip_key("10.0.0.11", 80, IPPROTO_TCP), web},
      {vip_key("10.0.0.11", 443, IPPROTO_TCP), tls},   // two on 10.0.0.11 TCP: ambiguous
      {vip_key("10.0.0.20", 8080, IPPROTO_TCP), app},  // steer: the kernel's
      {vip_key("fd00::10", 80, IPPROTO_TCP), web6},
  });
  std::vector<std::pair<std::string, uint32_t>> got;
  for (const auto& [key, info] : entries) {
    EXPECT_EQ(key.port, 0) << "a fragment key has no port";
    const auto ip =
        key.family == RINGLB_FAMILY_V4 ? IpAddress::v4(in_addr{key.addr[0]}) : IpAddress::v6([&] {
          in6_addr a{};
          std::memcpy(&a, key.addr, 16);
          return a;
        }());
    got.emplace_back(ip.to_string() + "/" + std::to_string(key.proto), info.vip_id);
  }
  std::sort(got.begin(), got.end());
  const std::vector<std::pair<std::string, uint32_t>> want = {
      {"10.0.0.10/17", 2}, {"10.0.0.10/6", 1}, {"fd00::10/6", 5}};
  EXPECT_EQ(got, want);
}

TEST(XdpPins, TheUnpinListIsTheSkeletonsPinnedMapsVipIndexIncluded) {
  auto names = xdp::pinned_map_names();
  ASSERT_TRUE(names) << names.error().message;
  for (const char* expected : {"vips", "frag_vips", "vip_index", "backends", "maglev_tables",
                               "flows", "lb_state", "vip_state", "backend_state"}) {
    EXPECT_NE(std::find(names->begin(), names->end(), expected), names->end()) << expected;
  }
  // Each name once.
  std::vector<std::string> sorted = *names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

}  // namespace
}  // namespace ringlb
