// A worker's connection slots: reuse, generations, and the 24 generation bits that
// user_data carries (ring.h), without a ring or a socket.
#include "proxy/connection_slab.h"

#include <gtest/gtest.h>

#include <set>

namespace ringlb::proxy {
namespace {

// What a completion for `c`'s current occupant carries, through user_data's encoding.
UserData completion_for(const Connection& c) {
  return UserData::decode(UserData{Op::connect, c.generation, c.index}.encode());
}

TEST(ConnectionSlab, GrowsAChunkAtATimeWithDistinctIndexes) {
  ConnectionSlab slab;
  EXPECT_EQ(slab.size(), 0u);
  std::set<uint32_t> indexes;
  for (uint32_t i = 0; i < ConnectionSlab::kChunkSize + 1; ++i) {
    Connection* c = slab.allocate();
    c->phase = Phase::connecting;
    indexes.insert(c->index);
    EXPECT_EQ(&slab.slot(c->index), c);
  }
  EXPECT_EQ(indexes.size(), ConnectionSlab::kChunkSize + 1);
  EXPECT_EQ(slab.size(), 2 * ConnectionSlab::kChunkSize);
}

TEST(ConnectionSlab, LiveFindsTheCurrentOccupantOnly) {
  ConnectionSlab slab;
  Connection* c = slab.allocate();
  c->phase = Phase::connecting;
  const UserData old = completion_for(*c);
  EXPECT_EQ(slab.live(old), c);

  slab.release(*c);
  EXPECT_EQ(slab.live(old), nullptr);  // the slot is free

  Connection* again = slab.allocate();
  ASSERT_EQ(again, c);  // the freed slot is reused first
  again->phase = Phase::established;
  EXPECT_EQ(slab.live(old), nullptr);  // a late completion of the earlier occupant
  EXPECT_EQ(slab.live(completion_for(*again)), again);
}

TEST(ConnectionSlab, LiveRejectsAnIndexBeyondTheSlots) {
  ConnectionSlab slab;
  slab.allocate()->phase = Phase::connecting;
  EXPECT_EQ(slab.live(UserData{Op::connect, 0, slab.size()}), nullptr);
}

TEST(ConnectionSlab, ReleaseResetsTheSlotAndStartsTheNextGeneration) {
  ConnectionSlab slab;
  Connection* c = slab.allocate();
  const uint32_t index = c->index;
  const uint32_t generation = c->generation;
  c->phase = Phase::established;
  c->client = 7;
  c->up.in_pipe = 100;
  c->bytes_in = 5;
  slab.release(*c);
  EXPECT_EQ(c->index, index);
  EXPECT_EQ(c->generation, generation + 1);
  EXPECT_EQ(c->phase, Phase::free);
  EXPECT_EQ(c->client, -1);
  EXPECT_EQ(c->up.in_pipe, 0u);
  EXPECT_EQ(c->bytes_in, 0u);
}

TEST(ConnectionSlab, GenerationsCompareInTheBitsUserDataCarries) {
  ConnectionSlab slab;
  Connection* c = slab.allocate();
  c->generation = kGenerationMask;  // the last generation that fits user_data
  c->phase = Phase::connecting;
  const UserData last = completion_for(*c);
  EXPECT_EQ(slab.live(last), c);

  slab.release(*c);  // 2^24: wraps to 0 in user_data
  Connection* next = slab.allocate();
  ASSERT_EQ(next, c);
  next->phase = Phase::connecting;
  EXPECT_EQ(completion_for(*next).generation, 0u);
  EXPECT_EQ(slab.live(completion_for(*next)), next);
  EXPECT_EQ(slab.live(last), nullptr);
}

}  // namespace
}  // namespace ringlb::proxy
