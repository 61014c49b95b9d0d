// ip_hash: Maglev consistent hashing of the client address (maglev.h). The table and the
// hash are the ones the XDP program uses in forward mode, so both planes agree.
#include <vector>

#include "policy/registry.h"
#include "ringlb/maglev.h"

namespace ringlb {
namespace {

void prepare_ip_hash(const Pool& pool, PolicyTables& tables) {
  const auto eligible = pool.eligible();
  if (eligible.empty()) {
    return;
  }
  std::vector<MaglevBackend> members;
  members.reserve(eligible.size());
  for (uint32_t index : eligible) {
    const auto& spec = pool.backends()[index].spec;
    members.push_back(MaglevBackend{.name = spec.name, .weight = spec.weight});
  }
  tables.maglev = build_maglev_table(members, pool.options().maglev_table_size);
  for (auto& entry : tables.maglev) {
    entry = eligible[entry];  // position among eligible -> backend index
  }
}

class IpHash final : public Policy {
 public:
  const Backend* pick(const Pool& pool, const Client& client) override {
    const auto& table = pool.tables().maglev;
    if (table.empty()) {
      return nullptr;
    }
    uint64_t hash = client_hash(pool.options().hash_key, client.address);
    if (client.attempt != 0) {
      // A retry: move to another slot, deterministically for this client and attempt.
      hash = (hash ^ (client.attempt * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
      hash ^= hash >> 31;
    }
    return &pool.backends()[table[ringlb_reduce(hash, static_cast<uint32_t>(table.size()))]];
  }
};

}  // namespace

const PolicyOps kIpHashOps{
    .kind = PolicyKind::ip_hash,
    .prepare = prepare_ip_hash,
    .make = [](uint64_t) -> std::unique_ptr<Policy> { return std::make_unique<IpHash>(); },
};

}  // namespace ringlb
