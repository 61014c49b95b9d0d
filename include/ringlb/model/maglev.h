// The Maglev table behind ip_hash (proxy) and forward mode (XDP).
//
// Each backend walks its own permutation of the table's slots, as in Maglev: position j
// of backend b is slot (offset_b + j * skip_b) mod M, with offset and skip derived from
// the backend's name. Classic Maglev fills the table by letting each backend claim its
// next free slot in turn; that balances exactly but, when a backend leaves, also moves
// some slots between the backends that stay. ringlb instead gives each slot to the
// backend that reaches it earliest in weighted rank order:
//
//     owner(slot) = argmin over backends b of  E(rank_b(slot)) / weight_b
//
// where rank_b(slot) is the slot's position in b's permutation and
// E(j) = -ln(1 - j/M) turns uniform ranks into exponential ones, which makes the
// expected share of b exactly weight_b / sum(weights). Ties go to the smaller name.
// Because each slot's owner is the minimum of a fixed per-slot order:
//   - removing a backend moves only the slots it owned (no collateral moves at all);
//   - adding a backend moves only the slots it wins, weight_new / sum(weights) of them
//     in expectation;
//   - the table is a pure function of the set of (name, weight) pairs, so every
//     balancer host builds the same table.
// The price is that balance is statistical (binomial around the weighted share) rather
// than within one slot; at M = 65537 the deviation is a fraction of a percent of the
// table (measured figures in perf/README.md).
//
// The build walks each permutation only as deep as needed to cover every slot
// (about M ln M steps in total), so it is O(M log M) whatever the number of backends.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "ringlb/model/model.h"

namespace ringlb {

inline constexpr uint32_t kDefaultMaglevTableSize = 65537;
inline constexpr uint32_t kMaxMaglevTableSize = 1u << 24;

struct MaglevBackend {
  std::string_view name;
  uint32_t weight = 1;
};

bool is_prime(uint32_t n);

// Builds a table of `table_size` entries, each an index into `backends`.
// Preconditions: table_size is prime and at most kMaxMaglevTableSize; names are
// distinct; weights are above zero. An empty `backends` gives an empty table.
std::vector<uint32_t> build_maglev_table(std::span<const MaglevBackend> backends,
                                         uint32_t table_size = kDefaultMaglevTableSize);

// The Maglev table of a VIP's backends: `table_size` entries, each an index in 0..count,
// over the backends `member(i)` names (nullptr: backend i takes no new connections; its
// name and weight otherwise). ip_hash, the XDP maps and `ringlb which` all build their
// tables here, each with its membership rule (in rotation and healthy), so they name the
// same backend for a client. No member gives an empty table.
std::vector<uint32_t> vip_maglev_table(uint32_t count,
                                       const std::function<const BackendSpec*(uint32_t)>& member,
                                       uint32_t table_size);

}  // namespace ringlb
