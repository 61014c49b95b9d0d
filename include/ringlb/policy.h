// Balancing policies: one small interface, one file each under src/policy/.
//
// A policy is pure: it looks at a Pool snapshot and a Client and returns a Backend,
// never touching sockets. Each worker owns its own Policy instances (cursors and random
// state are per worker), so pick() needs no lock. Snapshot-wide precomputation lives in
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
  // 0 for the first pick of a connection, k for the k-th retry after a failed connect.
  // Policies that are deterministic per client (ip_hash) pick a different backend per
  // attempt, so a retry does not return to the backend that just failed.
  uint32_t attempt = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;
  // Returns an eligible backend of `pool` for `client`, or nullptr when the pool has no
  // eligible backend. Precondition: called from one thread at a time (the owner).
  // Never allocates, never locks.
  virtual const Backend* pick(const Pool& pool, const Client& client) = 0;
};

// The registration of one policy (the form of HAProxy's lb ops tables).
struct PolicyOps {
  PolicyKind kind;
  // Fills the policy's tables for `pool`, whose eligible set is already computed.
  void (*prepare)(const Pool& pool, PolicyTables& tables);
  // A fresh per-worker instance; `seed` feeds its random choices.
  std::unique_ptr<Policy> (*make)(uint64_t seed);
};

const PolicyOps& policy_ops(PolicyKind kind);

inline std::unique_ptr<Policy> make_policy(PolicyKind kind, uint64_t seed) {
  return policy_ops(kind).make(seed);
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
