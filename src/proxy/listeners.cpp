// The worker's listeners: one accept slot per VIP, kept across reloads; multishot
// accepts armed, cancelled and resumed (overload, descriptors running out, drain); and
// each accepted client's first step.
#include <unistd.h>

#include <cerrno>

#include "worker_loop.h"

namespace ringlb::proxy {

namespace {

constexpr uint32_t kAcceptRetryMs = 100;  // pause after EMFILE/ENFILE

}  // namespace

struct LocalVip {
  std::shared_ptr<VipRuntime> vip;
  SnapshotReader<VipState> reader;
  uint32_t slot = 0;              // user_data index of its accepts; never changes
  uint32_t first_generation = 0;  // generations [first, generation] are this VIP's arms
  uint32_t generation = 0;        // the current arm
  bool accept_armed = false;

  explicit LocalVip(std::shared_ptr<VipRuntime> v) : vip(std::move(v)), reader(vip->state()) {}

  // Whether an accept completion tagged `g` came from one of this VIP's arms (a
  // completion already queued when the accept was re-armed or cancelled still carries
  // a client that must be served).
  bool owns_generation(uint32_t g) const {
    return ((g - first_generation) & kGenerationMask) <=
           ((generation - first_generation) & kGenerationMask);
  }
};

void WorkerLoop::refresh_vips() {
  const uint64_t generation = runtime_.vips().generation();
  if (generation == vip_set_generation_) {
    return;
  }
  vip_set_generation_ = generation;
  const auto& set = vip_set_.get();
  // A VIP keeps its slot for as long as it exists, so its queued accept completions
  // stay valid across reloads; a removed VIP leaves a hole for the next new one.
  for (auto& local : vips_) {
    if (!local) {
      continue;
    }
    bool kept = false;
    for (const auto& vip : set->vips) {
      kept = kept || vip == local->vip;
    }
    if (!kept) {
      cancel_accept(*local);
      cut_connections_of(*local);
      local.reset();
    }
  }
  for (const auto& vip : set->vips) {
    bool present = false;
    for (const auto& local : vips_) {
      present = present || (local && local->vip == vip);
    }
    if (present) {
      continue;
    }
    uint32_t slot = 0;
    while (slot < vips_.size() && vips_[slot]) {
      ++slot;
    }
    if (slot == vips_.size()) {
      vips_.emplace_back();
      slot_generations_.push_back(0);
    }
    auto local = std::make_shared<LocalVip>(vip);
    local->slot = slot;
    // Past every generation the slot's previous VIP used.
    local->first_generation = local->generation = ++slot_generations_[slot];
    vips_[slot] = std::move(local);
  }
  resume_accepting();
}

// A reload removed `vip` (its listeners are shut down already): its connections finish
// on their own within drain_timeout_ms, and are reset after that (drain_closes).
void WorkerLoop::cut_connections_of(const LocalVip& vip) {
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    Connection& c = slots_.slot(i);
    if (c.phase != Phase::free && c.vip_slot == vip.slot && c.vip_tag == vip.first_generation) {
      c.cut_deadline_ms = now_ms_ + options_.drain_timeout_ms;
    }
  }
}

void WorkerLoop::arm_accept(LocalVip& vip) {
  vip.generation = ++slot_generations_[vip.slot];
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_multishot_accept(sqe, vip.vip->listener(options_.index), nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UserData{Op::accept, vip.generation, vip.slot}.encode());
  vip.accept_armed = true;
}

void WorkerLoop::cancel_accept(LocalVip& vip) {
  if (!vip.accept_armed) {
    return;
  }
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_cancel64(sqe, UserData{Op::accept, vip.generation, vip.slot}.encode(), 0);
  io_uring_sqe_set_data64(sqe, UserData{Op::ignore, 0, 0}.encode());
  vip.accept_armed = false;
}

void WorkerLoop::cancel_accepts() {
  for (auto& v : vips_) {
    if (v) {
      cancel_accept(*v);
    }
  }
}

void WorkerLoop::resume_accepting() {
  if (draining_ || accept_paused_ || overloaded_) {
    return;
  }
  for (auto& v : vips_) {
    // A VIP whose listeners a reload shut down waits here for refresh_vips to drop it.
    if (v && !v->accept_armed && v->vip->listening()) {
      arm_accept(*v);
    }
  }
}

void WorkerLoop::on_accept(UserData ud, int res, unsigned flags) {
  LocalVip* vip = nullptr;
  if (ud.index < vips_.size() && vips_[ud.index] &&
      vips_[ud.index]->owns_generation(ud.generation)) {
    vip = vips_[ud.index].get();
    // Only the current arm's end matters: an older arm was cancelled or ended already.
    if (!(flags & IORING_CQE_F_MORE) && (vip->generation & kGenerationMask) == ud.generation) {
      vip->accept_armed = false;
    }
  }
  if (res < 0) {
    if (res == -ECANCELED || res == -EINVAL) {  // cancelled, or the listener was shut down
      return;
    }
    stats_.accept_errors.add();
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
      // Out of descriptors or memory: give back the idle pipes and stop accepting for a
      // while instead of spinning.
      pipes_.release_pooled_pipes();
      if (!accept_paused_) {
        stats_.accept_pauses.add();
        accept_paused_ = true;
        cancel_accepts();
      }
      accept_resume_ms_ = now_ms_ + kAcceptRetryMs;
      return;
    }
    resume_accepting();  // re-arms the VIP whose accept ended, if it did
    return;
  }
  const int fd = res;
  if (vip == nullptr || draining_) {
    ::close(fd);  // its VIP is gone (removed by a reload), or the worker is draining
    return;
  }
  if (!vip->accept_armed) {
    resume_accepting();
  }
  stats_.accepted.add();
  if (active_ >= options_.max_connections) {
    stats_.rejected_overload.add();
    if (options_.log.ring != nullptr) {
      log_rejected(fd, vip->vip->name());
    }
    set_reset_on_close(fd);
    ::close(fd);
    if (!overloaded_) {
      overloaded_ = true;
      cancel_accepts();
    }
    return;
  }
  Connection* c = slots_.allocate();
  c->phase = Phase::connecting;
  c->client = fd;
  c->state = vip->reader.get();  // the one snapshot load of this connection
  c->vip_slot = vip->slot;
  c->vip_tag = vip->first_generation;
  c->last_activity_ms = now_ms_;
  c->accepted_ns = monotonic_ns();
  ++active_;
  stats_.active.add();
  start_connect(*c);
}

}  // namespace ringlb::proxy
