// ip_hash: Maglev consistent hashing of the client address (maglev.h). The table and the
// hash are the ones the XDP program uses in forward mode, so both planes agree.
//
// A retry walks the client's preference order: the owners of a sequence of slots drawn
// from the client's hash (its own slot first), skipping tried backends. The order is
// deterministic for the client, so every worker and every balancer host with the same
// table retries the same backend next, and each backend is a second choice in
// proportion to its share of the table. (The owners of the slots right after the
// client's own would not be: runs in the table made some backends a second choice a
// third more often than others.)
#include <vector>

#include "policy/registry.h"
#include "ringlb/model/client_hash.h"
#include "ringlb/model/maglev.h"

namespace ringlb {
namespace {

// Slots a retry draws before it walks the table.
constexpr uint64_t kRetryProbes = 64;

void prepare_ip_hash(const Pool& pool, PolicyTables& tables) {
  const auto backends = pool.backends();
  tables.maglev = vip_maglev_table(
      static_cast<uint32_t>(backends.size()),
      [&](uint32_t i) { return backends[i].eligible() ? &backends[i].spec : nullptr; },
      pool.options().maglev_table_size);
}

class IpHash final : public Policy {
 public:
  explicit IpHash(std::shared_ptr<const PolicyPlan> plan) : Policy(std::move(plan)) {}

  const Backend* pick(const Client& client, const TriedBackends& tried) override {
    const auto& table = tables().maglev;
    if (table.empty()) {
      return nullptr;
    }
    const auto size = static_cast<uint32_t>(table.size());
    const uint64_t hash = client_hash(pool().options().hash_key, client.address);
    uint32_t slot = ringlb_reduce(hash, size);
    if (!tried.contains(table[slot])) {
      return &pool().backends()[table[slot]];
    }
    if (all_eligible_tried(pool(), tried)) {
      return nullptr;
    }
    for (uint64_t probe = 1; probe <= kRetryProbes; ++probe) {
      uint64_t h = (hash ^ (probe * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
      slot = ringlb_reduce(h ^ (h >> 31), size);
      if (!tried.contains(table[slot])) {
        return &pool().backends()[table[slot]];
      }
    }
    // The tried backends own nearly the whole table: walk it from the last probe.
    for (uint32_t step = 1; step < size; ++step) {
      slot = slot + 1 == size ? 0 : slot + 1;
      if (!tried.contains(table[slot])) {
        return &pool().backends()[table[slot]];
      }
    }
    // An eligible backend whose weight is too small to own a slot.
    for (uint32_t index : pool().eligible()) {
      if (!tried.contains(index)) {
        return &pool().backends()[index];
      }
    }
    return nullptr;
  }
};

}  // namespace

const PolicyOps kIpHashOps{
    .kind = PolicyKind::ip_hash,
    .prepare = prepare_ip_hash,
    .make = [](std::shared_ptr<const PolicyPlan> plan, uint64_t) -> std::unique_ptr<Policy> {
      return std::make_unique<IpHash>(std::move(plan));
    },
};

}  // namespace ringlb
