#include "ringlb/model/pool.h"

#include <atomic>

namespace ringlb {

std::shared_ptr<const Pool> Pool::build(std::vector<Backend> backends, const PoolOptions& options) {
  static std::atomic<uint64_t> next_id{1};
  std::shared_ptr<Pool> pool(new Pool());
  pool->id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  pool->options_ = options;
  pool->backends_ = std::move(backends);
  for (uint32_t i = 0; i < pool->backends_.size(); ++i) {
    if (pool->backends_[i].eligible()) {
      pool->eligible_.push_back(i);
    }
    const Backend& b = pool->backends_[i];
    if (b.ejected && !b.healthy && b.spec.in_rotation()) {
      pool->ejected_.push_back(i);
    }
  }
  return pool;
}

std::shared_ptr<const Pool> Pool::of_spec(const VipSpec& vip, const PoolOptions& options) {
  std::vector<Backend> backends;
  backends.reserve(vip.backends.size());
  for (const auto& spec : vip.backends) {
    backends.push_back(Backend{.spec = spec, .stats = std::make_shared<BackendStats>()});
  }
  return build(std::move(backends), options);
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
