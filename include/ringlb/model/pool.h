// Pool: the immutable snapshot of one VIP's backends that policies pick from.
//
// A Pool is built once per change (config load, reload, control write, health change)
// and never modified; workers hold it through SnapshotReader (snapshot.h). The eligible
// set is computed here; what one policy precomputes on top (the smooth weighted
// sequence, the alias table, the Maglev table) is the policy layer's PolicyPlan.
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "ringlb/abi/hash.h"
#include "ringlb/model/maglev.h"
#include "ringlb/model/model.h"

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
  // In rotation (up, weighted above zero) and healthy: the only backends a policy may
  // pick.
  bool eligible() const { return spec.in_rotation() && healthy; }
};

struct PoolOptions {
  ringlb_hash_key hash_key{};
  uint32_t maglev_table_size = kDefaultMaglevTableSize;
};

class Pool {
 public:
  // Builds the snapshot. Backend indexes everywhere are positions in `backends`, which
  // keeps the configured order.
  static std::shared_ptr<const Pool> build(std::vector<Backend> backends,
                                           const PoolOptions& options);
  // The pool of `vip`'s backends as configured: each healthy, with fresh counters. What
  // `ringlb simulate`, `ringlb which` and the tests predict with; ringlbd builds its
  // pools from live counters and health instead (proxy/runtime.h).
  static std::shared_ptr<const Pool> of_spec(const VipSpec& vip, const PoolOptions& options);

  // Unique per build in this process (seeds the policies' instances).
  uint64_t id() const { return id_; }
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
  const PoolOptions& options() const { return options_; }
  // The backend named `name`, or nullptr.
  const Backend* find(std::string_view name) const;

 private:
  Pool() = default;
  uint64_t id_ = 0;
  PoolOptions options_;
  std::vector<Backend> backends_;
  std::vector<uint32_t> eligible_;
  std::vector<uint32_t> ejected_;
};

}  // namespace ringlb
