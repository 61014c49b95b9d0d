// The connection log's parts without a daemon: the ring between a worker and the log
// thread, and the two line formats.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

#include "daemon/access_log.h"

namespace ringlb::daemon {
namespace {

using proxy::AccessRecord;
using proxy::AccessRing;
using proxy::End;

AccessRecord sample_record() {
  AccessRecord r;
  r.closed_unix_ns = 1'796'644'800'123'456'789ull;  // 2026-12-07T12:00:00.123456Z
  r.duration_us = 1500;
  r.connect_us = 120;
  r.bytes_client_to_backend = 100;
  r.bytes_backend_to_client = 2000;
  r.client = *SocketAddress::parse("[2001:db8::7]:51234");
  r.backend_address = *SocketAddress::parse("10.0.0.2:8080");
  r.worker = 3;
  r.retries = 1;
  r.end = End::backend_reset;
  r.reset = true;
  std::string("web.eu").copy(r.vip, 6);
  std::string("alpha").copy(r.backend, 5);
  return r;
}

TEST(AccessLogFormat, TextIsOneLogfmtLineWithEveryField) {
  EXPECT_EQ(format_access_text(sample_record()),
            "time=2026-12-07T12:00:00.123456Z client=[2001:db8::7]:51234 vip=web.eu "
            "backend=alpha backend_address=10.0.0.2:8080 worker=3 connect_us=120 "
            "duration_us=1500 bytes_client_to_backend=100 bytes_backend_to_client=2000 "
            "retries=1 end=backend_reset close=reset");
}

TEST(AccessLogFormat, JsonHasTheSameFieldsAndNullForNoBackend) {
  EXPECT_EQ(format_access_json(sample_record()),
            "{\"time\":\"2026-12-07T12:00:00.123456Z\",\"client\":\"[2001:db8::7]:51234\","
            "\"vip\":\"web.eu\",\"backend\":\"alpha\",\"backend_address\":\"10.0.0.2:8080\","
            "\"worker\":3,\"connect_us\":120,\"duration_us\":1500,"
            "\"bytes_client_to_backend\":100,\"bytes_backend_to_client\":2000,\"retries\":1,"
            "\"end\":\"backend_reset\",\"close\":\"reset\"}");
  AccessRecord none = sample_record();
  none.backend[0] = '\0';
  none.backend_address = SocketAddress{};
  none.connect_us = -1;
  none.end = End::no_backend;
  const std::string line = format_access_json(none);
  EXPECT_NE(line.find("\"backend\":null,\"backend_address\":null"), std::string::npos) << line;
  EXPECT_NE(line.find("\"connect_us\":-1"), std::string::npos) << line;
  EXPECT_NE(format_access_text(none).find(" backend=- backend_address=- "), std::string::npos);
}

TEST(AccessLogFormat, EveryEndHasADistinctName) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < proxy::kEndCount; ++i) {
    const auto name = proxy::end_name(static_cast<End>(i));
    EXPECT_FALSE(name.empty());
    names.insert(name);
  }
  EXPECT_EQ(names.size(), proxy::kEndCount);
}

TEST(AccessRing, HoldsItsCapacityThenRefusesAndWrapsAround) {
  AccessRing ring(5);  // rounded up to 8
  EXPECT_EQ(ring.capacity(), 8u);
  AccessRecord r;
  for (uint16_t i = 0; i < 8; ++i) {
    r.worker = i;
    EXPECT_TRUE(ring.push(r));
  }
  EXPECT_FALSE(ring.push(r)) << "a full ring must refuse, not overwrite";
  AccessRecord out[8];
  ASSERT_EQ(ring.pop(out, 3), 3u);
  EXPECT_EQ(out[0].worker, 0);
  EXPECT_EQ(out[2].worker, 2);
  for (uint16_t i = 8; i < 11; ++i) {
    r.worker = i;
    EXPECT_TRUE(ring.push(r));
  }
  ASSERT_EQ(ring.pop(out, 8), 8u);
  for (uint16_t i = 0; i < 8; ++i) {
    EXPECT_EQ(out[i].worker, i + 3);
  }
  EXPECT_EQ(ring.pop(out, 8), 0u);
}

// One producer, one consumer, at once: every record arrives once, in order.
TEST(AccessRing, AProducerAndAConsumerLoseNothingAndKeepOrder) {
  AccessRing ring(64);
  constexpr uint64_t kCount = 200'000;
  std::thread producer([&] {
    AccessRecord r;
    for (uint64_t i = 0; i < kCount;) {
      r.duration_us = i;
      if (ring.push(r)) {
        ++i;
      }
    }
  });
  uint64_t next = 0;
  AccessRecord out[16];
  while (next < kCount) {
    const size_t n = ring.pop(out, 16);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(out[i].duration_us, next++);
    }
  }
  producer.join();
}

}  // namespace
}  // namespace ringlb::daemon
