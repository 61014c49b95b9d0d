#include "ringlb/pool.h"

#include <atomic>

#include "ringlb/policy.h"

namespace ringlb {

std::shared_ptr<const Pool> Pool::build(std::vector<Backend> backends, PolicyKind policy,
                                        const PoolOptions& options) {
  static std::atomic<uint64_t> next_id{1};
  std::shared_ptr<Pool> pool(new Pool());
  pool->id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  pool->policy_ = policy;
  pool->options_ = options;
  pool->backends_ = std::move(backends);
  for (uint32_t i = 0; i < pool->backends_.size(); ++i) {
    if (pool->backends_[i].eligible()) {
      pool->eligible_.push_back(i);
    }
    const Backend& b = pool->backends_[i];
    if (b.ejected && !b.healthy && b.spec.state == AdminState::up && b.spec.weight > 0) {
      pool->ejected_.push_back(i);
    }
  }
  policy_ops(policy).prepare(*pool, pool->tables_);
  return pool;
}

const Backend* Pool::find(std::string_view name) const {
  for (const auto& b : backends_) {
    if (b.spec.name == name) {
      return &b;
    }
  }
  return nullptr;
}

}  // namespace ringlb
