// Read-mostly snapshots swapped atomically: the only state workers share on the hot path.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

namespace ringlb {

// Holds the current snapshot of a T. One or more writers publish; any number of readers
// load. Readers normally go through SnapshotReader, which costs one acquire load per
// check when nothing changed.
template <class T>
class SnapshotCell {
 public:
  explicit SnapshotCell(std::shared_ptr<const T> initial) : current_(std::move(initial)) {}

  // Makes `next` the current snapshot. Readers see it at their next check.
  void publish(std::shared_ptr<const T> next) {
    std::shared_ptr<const T> old;
    {
      std::lock_guard lock(mu_);
      old = std::exchange(current_, std::move(next));
      generation_.fetch_add(1, std::memory_order_release);
    }
    // `old` is released outside the lock: the last reference may free a large table.
  }

  std::shared_ptr<const T> load() const {
    std::lock_guard lock(mu_);
    return current_;
  }

  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> current_;
  std::atomic<uint64_t> generation_{1};
};

// One reader's cached view of a SnapshotCell. Not thread-safe: one per worker.
template <class T>
class SnapshotReader {
 public:
  explicit SnapshotReader(const SnapshotCell<T>& cell) : cell_(&cell) {}

  // The current snapshot; reloads it (taking the cell's mutex) only after a publish.
  const std::shared_ptr<const T>& get() {
    const uint64_t generation = cell_->generation();
    if (generation != seen_) {
      current_ = cell_->load();
      seen_ = generation;
    }
    return current_;
  }

 private:
  const SnapshotCell<T>* cell_;
  uint64_t seen_ = 0;
  std::shared_ptr<const T> current_;
};

}  // namespace ringlb
