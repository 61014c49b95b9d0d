// ConnectionSlab: a worker's connection slots. Slots come kChunkSize at a time and are
// never freed while the worker runs, so a Connection never moves and its index names it
// in user_data. Each reuse of a slot starts a new generation, so a completion still
// queued for an earlier occupant is recognised (live() returns nullptr) and dropped.
// One thread, no locks; allocate() allocates only when every slot is taken.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "connection.h"
#include "ringlb/proxy/ring.h"

namespace ringlb::proxy {

class ConnectionSlab {
 public:
  static constexpr uint32_t kChunkSize = 1024;  // connection slots allocated at a time

  // A free slot, phase free and otherwise reset; the caller sets its phase.
  Connection* allocate();
  // The connection `ud` was made for, or nullptr when its slot is free or has been
  // reused since (the generations differ in the bits user_data carries).
  Connection* live(UserData ud) {
    if (ud.index >= slot_count_) {
      return nullptr;
    }
    Connection& c = slot(ud.index);
    if (c.phase == Phase::free || (c.generation & kGenerationMask) != ud.generation) {
      return nullptr;
    }
    return &c;
  }
  // Precondition: index < size().
  Connection& slot(uint32_t index) { return chunks_[index / kChunkSize][index % kChunkSize]; }
  // Slots made so far, free or not: every index below it is valid for slot().
  uint32_t size() const { return slot_count_; }
  // Resets `c` to a free slot of the next generation.
  void release(Connection& c);

 private:
  std::vector<std::unique_ptr<Connection[]>> chunks_;
  uint32_t free_head_ = kNoSlot;
  uint32_t slot_count_ = 0;
};

}  // namespace ringlb::proxy
