#include "ringlb/policy.h"

#include <cstring>

#include "policy/registry.h"

namespace ringlb {

const PolicyOps& policy_ops(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::round_robin:
      return kRoundRobinOps;
    case PolicyKind::weighted:
      return kWeightedOps;
    case PolicyKind::least_request:
      return kLeastRequestOps;
    case PolicyKind::random:
      return kRandomOps;
    case PolicyKind::ip_hash:
      return kIpHashOps;
  }
  return kRoundRobinOps;
}

uint64_t client_hash(const ringlb_hash_key& key, const IpAddress& address) {
  // The same words the XDP program loads from the packet: native loads of
  // network-order bytes.
  __u32 words[4];
  std::memcpy(words, address.bytes(), address.size());
  if (address.is_v4()) {
    return ringlb_hash_v4(&key, words[0]);
  }
  return ringlb_hash_v6(&key, words);
}

}  // namespace ringlb
