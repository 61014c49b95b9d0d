#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "ringlb/snapshot.h"

namespace ringlb {
namespace {

struct Table {
  uint64_t version;
  std::vector<uint64_t> entries;  // every entry equals version: a torn read would show
};

TEST(Snapshot, ReaderSeesEachPublishedValue) {
  SnapshotCell<int> cell(std::make_shared<const int>(1));
  SnapshotReader<int> reader(cell);
  EXPECT_EQ(*reader.get(), 1);
  cell.publish(std::make_shared<const int>(2));
  EXPECT_EQ(*reader.get(), 2);
  EXPECT_EQ(*reader.get(), 2);
}

// Readers never see a half-built table and see versions only move forward, while a
// writer publishes concurrently (run under TSan in CI).
TEST(Snapshot, ConcurrentReadersSeeWholeSnapshotsInOrder) {
  auto make = [](uint64_t v) {
    return std::make_shared<const Table>(Table{v, std::vector<uint64_t>(256, v)});
  };
  SnapshotCell<Table> cell(make(0));
  constexpr uint64_t kVersions = 2000;
  std::atomic<bool> failed{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      SnapshotReader<Table> reader(cell);
      uint64_t last = 0;
      while (last < kVersions) {
        const auto& table = reader.get();
        for (uint64_t e : table->entries) {
          if (e != table->version) {
            failed = true;
          }
        }
        if (table->version < last) {
          failed = true;
        }
        last = table->version;
      }
    });
  }
  for (uint64_t v = 1; v <= kVersions; ++v) {
    cell.publish(make(v));
  }
  for (auto& t : readers) {
    t.join();
  }
  EXPECT_FALSE(failed.load());
}

}  // namespace
}  // namespace ringlb
