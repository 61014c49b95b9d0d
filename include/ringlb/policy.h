// Balancing policies: one small interface, one file each under src/policy/.
//
// A policy is pure: it looks at a Pool snapshot and a Client and returns a Backend,
// never touching sockets. A policy instance is made for one pool and picks from that
// pool only: the pool is fixed when the instance is made, so a policy can never meet a
// pool whose tables it was not prepared with (a live policy switch used to pair a
// retrying connection's old pool with the new policy, and crashed the worker). Each
// worker has its own instance per pool snapshot (cursors and random state are per
// worker), so pick() needs no lock. Snapshot-wide precomputation lives in
// PolicyOps::prepare, run once per Pool build.
#pragma once

#include <cstdint>
#include <memory>

#include "ringlb/address.h"
#include "ringlb/model.h"
#include "ringlb/pool.h"

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

// alignas(64): the instances of different workers never share a cache line.
class alignas(64) Policy {
 public:
  explicit Policy(std::shared_ptr<const Pool> pool) : pool_(std::move(pool)) {}
  virtual ~Policy() = default;
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // The pool this instance was made for, and picks from.
  const Pool& pool() const { return *pool_; }

  // Returns an eligible backend of pool() that is not in `tried`, or nullptr when no
  // such backend is left. Precondition: called from one thread at a time (the owner).
  // Never allocates, never locks. O(1) for a first pick (`tried` empty); a retry may
  // scan the eligible backends once.
  virtual const Backend* pick(const Client& client, const TriedBackends& tried) = 0;

 private:
  std::shared_ptr<const Pool> pool_;
};

// The registration of one policy (the form of HAProxy's lb ops tables).
struct PolicyOps {
  PolicyKind kind;
  // Fills the policy's tables for `pool`, whose eligible set is already computed.
  void (*prepare)(const Pool& pool, PolicyTables& tables);
  // A fresh instance for `pool`; `seed` feeds its random choices and start position.
  std::unique_ptr<Policy> (*make)(std::shared_ptr<const Pool> pool, uint64_t seed);
};

const PolicyOps& policy_ops(PolicyKind kind);

// An instance of the policy `pool` was built for (Pool::policy()).
inline std::unique_ptr<Policy> make_policy(std::shared_ptr<const Pool> pool, uint64_t seed) {
  const PolicyOps& ops = policy_ops(pool->policy());
  return ops.make(std::move(pool), seed);
}

// The client hash of hash.h (SipHash-1-3 of the address bytes), as the XDP program
// computes it.
uint64_t client_hash(const ringlb_hash_key& key, const IpAddress& address);

// The client's slot among `n` (Maglev slot, steer worker): ringlb_reduce of its hash,
// the same computation as the XDP program's.
inline uint32_t client_slot(const ringlb_hash_key& key, const IpAddress& address, uint32_t n) {
  return ringlb_reduce(client_hash(key, address), n);
}

}  // namespace ringlb
