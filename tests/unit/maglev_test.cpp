#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "ringlb/model/maglev.h"

namespace ringlb {
namespace {

std::vector<std::string> names(size_t n, const std::string& prefix = "backend-") {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(prefix + std::to_string(i));
  }
  return out;
}

// Table entries as backend names, so tables of different backend lists compare.
std::vector<std::string> build(const std::vector<std::string>& list,
                               const std::vector<uint32_t>& weights = {},
                               uint32_t size = kDefaultMaglevTableSize) {
  std::vector<MaglevBackend> in;
  for (size_t i = 0; i < list.size(); ++i) {
    in.push_back({.name = list[i], .weight = weights.empty() ? 1 : weights[i]});
  }
  auto table = build_maglev_table(in, size);
  std::vector<std::string> out;
  out.reserve(table.size());
  for (auto index : table) {
    out.push_back(list.at(index));
  }
  return out;
}

std::map<std::string, double> shares(const std::vector<std::string>& table) {
  std::map<std::string, double> out;
  for (const auto& name : table) {
    out[name] += 1.0 / table.size();
  }
  return out;
}

TEST(Maglev, EmptyPoolGivesEmptyTable) {
  EXPECT_TRUE(build({}).empty());
}

TEST(Maglev, EverySlotIsFilled) {
  auto table = build(names(7), {}, 65537);
  EXPECT_EQ(table.size(), 65537u);
}

TEST(Maglev, IndependentOfInputOrder) {
  auto list = names(20);
  auto forward = build(list);
  std::reverse(list.begin(), list.end());
  EXPECT_EQ(build(list), forward);
}

// Balance: at 65537 slots no backend holds more than 1% of the table above its
// weighted share (equal and unequal weights, small and large pools).
TEST(Maglev, BalancedWithinOnePercentOfWeightedShare) {
  for (size_t n : {2, 3, 10, 100, 1000}) {
    auto list = names(n);
    for (auto& [name, share] : shares(build(list))) {
      EXPECT_LE(share, 1.0 / n + 0.01) << n << " backends, " << name;
    }
  }
  std::vector<uint32_t> weights = {1, 2, 3, 4, 10};
  auto list = names(weights.size());
  auto got = shares(build(list, weights));
  for (size_t i = 0; i < list.size(); ++i) {
    EXPECT_NEAR(got[list[i]], weights[i] / 20.0, 0.01) << list[i];
  }
}

// The stricter figure the table reaches in practice, relative to each share, for the
// pool sizes operators run most (recorded in perf/README.md).
TEST(Maglev, SmallPoolsWithinFourPercentRelative) {
  for (size_t n : {2, 3, 5, 10}) {
    for (auto& [name, share] : shares(build(names(n)))) {
      EXPECT_NEAR(share * n, 1.0, 0.04) << n << " backends, " << name;
    }
  }
}

TEST(Maglev, ZeroCollateralWhenABackendIsRemoved) {
  for (size_t n : {3, 10, 100}) {
    auto list = names(n);
    auto before = build(list);
    for (size_t removed : {size_t{0}, n / 2, n - 1}) {
      auto smaller = list;
      const std::string gone = smaller[removed];
      smaller.erase(smaller.begin() + removed);
      auto after = build(smaller);
      size_t moved = 0;
      for (size_t slot = 0; slot < before.size(); ++slot) {
        if (before[slot] != gone) {
          EXPECT_EQ(after[slot], before[slot]) << "slot " << slot;
        }
        moved += after[slot] != before[slot];
      }
      EXPECT_GT(moved, 0u);
    }
  }
}

TEST(Maglev, AddingABackendMovesAtMostItsShareAndOnePercent) {
  for (size_t n : {1, 3, 10, 100}) {
    auto list = names(n);
    auto before = build(list);
    list.push_back("newcomer");
    auto after = build(list);
    size_t moved = 0;
    for (size_t slot = 0; slot < before.size(); ++slot) {
      if (after[slot] != before[slot]) {
        ++moved;
        EXPECT_EQ(after[slot], "newcomer") << "a slot moved between old backends";
      }
    }
    const double fraction = static_cast<double>(moved) / before.size();
    EXPECT_LE(fraction, 1.0 / (n + 1) + 0.01) << n;
    EXPECT_GT(fraction, 0.0) << n;
  }
}

TEST(Maglev, WeightChangeMovesSlotsOnlyToOrFromTheChangedBackend) {
  auto list = names(5);
  auto before = build(list, {1, 1, 1, 1, 1});
  auto after = build(list, {1, 1, 3, 1, 1});
  for (size_t slot = 0; slot < before.size(); ++slot) {
    if (after[slot] != before[slot]) {
      EXPECT_EQ(after[slot], list[2]) << "slot " << slot;
    }
  }
}

TEST(Maglev, SmallPrimeTables) {
  for (uint32_t size : {3u, 7u, 251u}) {
    auto table = build(names(3), {}, size);
    EXPECT_EQ(table.size(), size);
  }
}

TEST(Maglev, Primality) {
  EXPECT_TRUE(is_prime(65537));
  EXPECT_TRUE(is_prime(2));
  EXPECT_FALSE(is_prime(65536));
  EXPECT_FALSE(is_prime(1));
  EXPECT_FALSE(is_prime(65535));
}

}  // namespace
}  // namespace ringlb
