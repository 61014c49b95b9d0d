// AccessRing and the end reasons' names (ringlb/proxy/access_log.h).
#include "ringlb/proxy/access_log.h"

#include <array>
#include <bit>

namespace ringlb::proxy {

namespace {

constexpr std::array<std::string_view, kEndCount> kEndNames{
    "client_fin",    "backend_fin",    "client_reset",
    "backend_reset", "idle",           "age",
    "drain",         "vip_removed",    "backend_shutdown",
    "no_backend",    "connect_failed", "local_error",
    "shutdown",      "overload",
};

}  // namespace

std::string_view end_name(End end) {
  return kEndNames[static_cast<size_t>(end)];
}

AccessRing::AccessRing(size_t capacity)
    : mask_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity) - 1),
      slots_(std::make_unique<AccessRecord[]>(mask_ + 1)) {}

bool AccessRing::push(const AccessRecord& record) {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  if (head - tail_.load(std::memory_order_acquire) > mask_) {
    return false;
  }
  slots_[head & mask_] = record;
  head_.store(head + 1, std::memory_order_release);
  return true;
}

size_t AccessRing::pop(AccessRecord* out, size_t max) {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  size_t n = 0;
  for (; n < max && tail + n != head; ++n) {
    out[n] = slots_[(tail + n) & mask_];
  }
  tail_.store(tail + n, std::memory_order_release);
  return n;
}

}  // namespace ringlb::proxy
