#include "ringlb/model/maglev.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

#include "ringlb/model/siphash.h"

namespace ringlb {

namespace {

// Fixed keys for deriving a backend's permutation from its name. They are not secret:
// the permutation only has to be the same on every host and spread names well.
constexpr ringlb_hash_key kOffsetKey{0x72696e676c622d6fULL, 0x66667365742d6b31ULL};
constexpr ringlb_hash_key kSkipKey{0x72696e676c622d73ULL, 0x6b69702d6b65792dULL};

// E(j) = -ln(1 - j/M) for every rank j: uniform ranks made exponential, so that the
// minimum of E(rank)/weight over backends is won in proportion to weight. Cached per
// thread because every build of the same size needs the same table.
const std::vector<double>& exponential_ranks(uint32_t table_size) {
  thread_local std::vector<double> ranks;
  if (ranks.size() != table_size) {
    ranks.resize(table_size);
    for (uint32_t j = 0; j < table_size; ++j) {
      ranks[j] = -std::log1p(-static_cast<double>(j) / table_size);
    }
  }
  return ranks;
}

struct Walker {
  uint32_t slot;      // slot at rank `rank`
  uint32_t skip;      // permutation step, 1..M-1
  uint32_t rank = 0;  // next rank to visit
  double inverse_weight;
};

}  // namespace

bool is_prime(uint32_t n) {
  if (n < 2) {
    return false;
  }
  for (uint32_t d = 2; static_cast<uint64_t>(d) * d <= n; ++d) {
    if (n % d == 0) {
      return false;
    }
  }
  return true;
}

std::vector<uint32_t> build_maglev_table(std::span<const MaglevBackend> backends,
                                         uint32_t table_size) {
  assert(is_prime(table_size) && table_size <= kMaxMaglevTableSize);
  if (backends.empty()) {
    return {};
  }
  const uint32_t m = table_size;
  const auto& ranks = exponential_ranks(m);

  // Ties (equal scores) go to the smaller name, which keeps the result a function of
  // the set and not of the input order.
  std::vector<uint32_t> by_name(backends.size());
  std::iota(by_name.begin(), by_name.end(), 0);
  std::sort(by_name.begin(), by_name.end(),
            [&](uint32_t a, uint32_t b) { return backends[a].name < backends[b].name; });
  std::vector<uint32_t> name_order(backends.size());
  for (uint32_t i = 0; i < by_name.size(); ++i) {
    name_order[by_name[i]] = i;
  }

  std::vector<Walker> walkers;
  walkers.reserve(backends.size());
  double total_weight = 0;
  for (const auto& b : backends) {
    assert(b.weight > 0);
    walkers.push_back(Walker{
        .slot = static_cast<uint32_t>(siphash(kOffsetKey, b.name) % m),
        .skip = static_cast<uint32_t>(siphash(kSkipKey, b.name) % (m - 1) + 1),
        .inverse_weight = 1.0 / b.weight,
    });
    total_weight += b.weight;
  }

  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  std::vector<double> best(m, std::numeric_limits<double>::infinity());
  std::vector<uint32_t> owner(m, kNone);

  // A slot is still free at score t with probability exp(-t * total_weight); start
  // where about one slot in twenty is left and double until none is. Every (backend,
  // rank) with score <= threshold has been visited after a pass, so each slot's owner
  // is exact whatever the thresholds were.
  double threshold = (std::log(static_cast<double>(m)) + 3.0) / total_weight;
  uint32_t filled = 0;
  while (true) {
    for (uint32_t b = 0; b < walkers.size(); ++b) {
      Walker& w = walkers[b];
      while (w.rank < m) {
        // The same expression decides "visited" and "better", so the owner found is
        // exact for every slot whose best score is within the threshold.
        const double score = ranks[w.rank] * w.inverse_weight;
        if (score > threshold) {
          break;
        }
        const uint32_t slot = w.slot;
        const uint32_t current = owner[slot];
        if (current == kNone) {
          ++filled;
          best[slot] = score;
          owner[slot] = b;
        } else if (score < best[slot] ||
                   (score == best[slot] && name_order[b] < name_order[current])) {
          best[slot] = score;
          owner[slot] = b;
        }
        w.slot += w.skip;
        if (w.slot >= m) {
          w.slot -= m;
        }
        ++w.rank;
      }
    }
    if (filled == m) {
      break;
    }
    threshold *= 2;
  }
  return owner;
}

std::vector<uint32_t> vip_maglev_table(uint32_t count,
                                       const std::function<const BackendSpec*(uint32_t)>& member,
                                       uint32_t table_size) {
  std::vector<MaglevBackend> members;
  std::vector<uint32_t> index_of;
  for (uint32_t i = 0; i < count; ++i) {
    if (const BackendSpec* spec = member(i)) {
      members.push_back(MaglevBackend{.name = spec->name, .weight = spec->weight});
      index_of.push_back(i);
    }
  }
  if (members.empty()) {
    return {};
  }
  auto table = build_maglev_table(members, table_size);
  for (auto& slot : table) {
    slot = index_of[slot];  // position among the members -> backend index
  }
  return table;
}

}  // namespace ringlb
