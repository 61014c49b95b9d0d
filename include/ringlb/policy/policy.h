// Balancing policies: one small interface, one file each under src/policy/.
//
// A policy is pure: it looks at a Pool snapshot and a Client and returns a Backend,
// never touching sockets. Snapshot-wide precomputation (PolicyOps::prepare) runs once per
// pool and kind into a PolicyPlan; a policy instance is made for one plan and picks from
// its pool only, so a policy can never meet a pool whose tables it was not prepared with
// (a live policy switch used to pair a retrying connection's old pool with the new
// policy, and crashed the worker). Each worker has its own instance per snapshot
// (cursors and random state are per worker), so pick() needs no lock.
#pragma once

#include <cstdint>
#include <memory>

#include <vector>

#include "ringlb/model/address.h"
#include "ringlb/model/model.h"
#include "ringlb/model/pool.h"

namespace ringlb {

struct Client {
  IpAddress address;
  uint16_t port = 0;
};

// The backends one connection has tried, by index in its pool. Policies never return
// one of them again, so a retry goes to another backend whatever the policy (HAProxy's
// redispatch, Envoy's previous-hosts retry predicate).
class TriedBackends {
 public:
  static constexpr uint32_t kCapacity = 17;  // connect_retries is at most 16

  bool contains(uint32_t index) const {
    for (uint32_t i = 0; i < count_; ++i) {
      if (indexes_[i] == index) {
        return true;
      }
    }
    return false;
  }
  // Precondition: !full() and !contains(index).
  void add(uint32_t index) { indexes_[count_++] = index; }
  uint32_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == kCapacity; }
  const uint32_t* begin() const { return indexes_; }
  const uint32_t* end() const { return indexes_ + count_; }

 private:
  uint32_t count_ = 0;
  uint32_t indexes_[kCapacity];
};

// Read-only tables a policy precomputes for a pool (only its own are filled).
struct PolicyTables {
  // weighted: one cycle of the smooth weighted round-robin sequence (backend indexes).
  std::vector<uint32_t> sequence;
  // random: Vose alias table over the eligible backends (threshold scaled to 2^32).
  std::vector<uint32_t> alias;
  std::vector<uint64_t> alias_threshold;
  // ip_hash: Maglev table (backend indexes).
  std::vector<uint32_t> maglev;
};

// A pool prepared for one policy: the pool and the tables every instance of the policy
// reads. Built once per snapshot, shared by the workers' instances; immutable.
class PolicyPlan {
 public:
  static std::shared_ptr<const PolicyPlan> make(std::shared_ptr<const Pool> pool, PolicyKind kind);
  const Pool& pool() const { return *pool_; }
  const std::shared_ptr<const Pool>& shared_pool() const { return pool_; }
  PolicyKind kind() const { return kind_; }
  const PolicyTables& tables() const { return tables_; }

 private:
  PolicyPlan() = default;
  std::shared_ptr<const Pool> pool_;
  PolicyKind kind_ = PolicyKind::round_robin;
  PolicyTables tables_;
};

// alignas(64): the instances of different workers never share a cache line.
class alignas(64) Policy {
 public:
  explicit Policy(std::shared_ptr<const PolicyPlan> plan) : plan_(std::move(plan)) {}
  virtual ~Policy() = default;
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // The pool this instance was made for, and picks from, and its policy's tables.
  const Pool& pool() const { return plan_->pool(); }
  const PolicyTables& tables() const { return plan_->tables(); }

  // Returns an eligible backend of pool() that is not in `tried`, or nullptr when no
  // such backend is left. Precondition: called from one thread at a time (the owner).
  // Never allocates, never locks. O(1) for a first pick (`tried` empty); a retry may
  // scan the eligible backends once.
  virtual const Backend* pick(const Client& client, const TriedBackends& tried) = 0;

 private:
  std::shared_ptr<const PolicyPlan> plan_;
};

// The registration of one policy (the form of HAProxy's lb ops tables).
struct PolicyOps {
  PolicyKind kind;
  // Fills the policy's tables for `pool`, whose eligible set is already computed.
  void (*prepare)(const Pool& pool, PolicyTables& tables);
  // A fresh instance for `plan`; `seed` feeds its random choices and start position.
  std::unique_ptr<Policy> (*make)(std::shared_ptr<const PolicyPlan> plan, uint64_t seed);
};

const PolicyOps& policy_ops(PolicyKind kind);

// An instance of the policy `plan` was prepared for.
inline std::unique_ptr<Policy> make_policy(std::shared_ptr<const PolicyPlan> plan, uint64_t seed) {
  const PolicyOps& ops = policy_ops(plan->kind());
  return ops.make(std::move(plan), seed);
}

}  // namespace ringlb
