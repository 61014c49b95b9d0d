// Pool: the immutable snapshot of one VIP's backends that policies pick from.
//
// A Pool is built once per change (config load, reload, control write, health change)
// and never modified; workers hold it through SnapshotReader (snapshot.h). Everything a
// policy needs that is not per-worker state (the eligible set, the smooth weighted
// sequence, the alias table, the Maglev table) is precomputed here, so pick() is O(1).
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "ringlb/hash.h"
#include "ringlb/model.h"

namespace ringlb {

// One backend in a snapshot: its spec, its health at build time and its live counters.
struct Backend {
  BackendSpec spec;
  bool healthy = true;
  std::shared_ptr<BackendStats> stats;
  // Slow start (health.h): the share of its weight the backend gets, in 1/1000.
  uint32_t ramp_permille = 1000;
  // Taken out by passive ejection alone (health.h: HealthState::ejected).
  bool ejected = false;

  // The weight the weighted, least_request and random policies balance by: the
  // configured weight scaled by the slow-start ramp (only ratios matter).
  uint64_t effective_weight() const { return uint64_t{spec.weight} * ramp_permille; }
  // Up, healthy and weighted above zero: the only backends a policy may pick.
  bool eligible() const { return spec.state == AdminState::up && healthy && spec.weight > 0; }
};

// Read-only tables a policy precomputes for a snapshot (only its own are filled).
struct PolicyTables {
  // weighted: one cycle of the smooth weighted round-robin sequence (backend indexes).
  std::vector<uint32_t> sequence;
  // random: Vose alias table over the eligible backends (threshold scaled to 2^32).
  std::vector<uint32_t> alias;
  std::vector<uint64_t> alias_threshold;
  // ip_hash: Maglev table (backend indexes) and the client hash key.
  std::vector<uint32_t> maglev;
};

struct PoolOptions {
  ringlb_hash_key hash_key{};
  uint32_t maglev_table_size = 65537;
};

class Pool {
 public:
  // Builds the snapshot and the tables of `policy`. Backend indexes everywhere are
  // positions in `backends`, which keeps the configured order.
  static std::shared_ptr<const Pool> build(std::vector<Backend> backends, PolicyKind policy,
                                           const PoolOptions& options);

  // Unique per build in this process: tells a policy that its snapshot changed.
  uint64_t id() const { return id_; }
  PolicyKind policy() const { return policy_; }
  std::span<const Backend> backends() const { return backends_; }
  // Indexes of eligible backends, in configured order.
  std::span<const uint32_t> eligible() const { return eligible_; }
  // Indexes of backends that would be eligible but for passive ejection, in configured
  // order. Ejection is a guess from connect failures that time makes stale: a
  // connection that has tried every eligible backend tries these before it gives up.
  std::span<const uint32_t> ejected() const { return ejected_; }
  // The index of `backend`, which must be one of backends().
  uint32_t index_of(const Backend& backend) const {
    return static_cast<uint32_t>(&backend - backends_.data());
  }
  const PolicyTables& tables() const { return tables_; }
  const PoolOptions& options() const { return options_; }
  // The backend named `name`, or nullptr.
  const Backend* find(std::string_view name) const;

 private:
  Pool() = default;
  uint64_t id_ = 0;
  PolicyKind policy_ = PolicyKind::round_robin;
  PoolOptions options_;
  std::vector<Backend> backends_;
  std::vector<uint32_t> eligible_;
  std::vector<uint32_t> ejected_;
  PolicyTables tables_;
};

}  // namespace ringlb
