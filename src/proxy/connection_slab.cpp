#include "connection_slab.h"

namespace ringlb::proxy {

Connection* ConnectionSlab::allocate() {
  if (free_head_ == kNoSlot) {
    chunks_.push_back(std::make_unique<Connection[]>(kChunkSize));
    for (uint32_t i = kChunkSize; i-- > 0;) {
      Connection& c = chunks_.back()[i];
      c.index = slot_count_ + i;
      c.next_free = free_head_;
      free_head_ = c.index;
    }
    slot_count_ += kChunkSize;
  }
  Connection& c = slot(free_head_);
  free_head_ = c.next_free;
  c.next_free = kNoSlot;
  return &c;
}

void ConnectionSlab::release(Connection& c) {
  const uint32_t index = c.index;
  const uint32_t generation = c.generation + 1;
  c = Connection{};
  c.index = index;
  c.generation = generation;
  c.next_free = free_head_;
  free_head_ = index;
}

}  // namespace ringlb::proxy
