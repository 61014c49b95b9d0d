// Steer mode, the daemon's half: each proxy VIP's SO_REUSEPORT listener group gets
// ringlb's sk_reuseport program (xdp::ReuseportProgram), so a connection is accepted by
// the worker that owns ringlb_reduce(hash(client), workers): the worker whose CPU the
// XDP program steered the packet to (`ringlb attach` sets that half up). With no XDP
// program attached the reuseport half still holds: a client always lands on the same
// worker.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"
#include "ringlb/xdp/reuseport.h"

namespace ringlb::daemon {

class Steering {
 public:
  // Attaches the program to every proxy VIP of `runtime` not steered yet and forgets
  // VIPs that are gone. Call at start and after each successful reload. Needs CAP_BPF;
  // an error leaves the VIPs served with the kernel's own reuseport choice. Thread-safe.
  Result<void> update(const Runtime& runtime, const Config& config, uint32_t workers);
  size_t steered() const {
    std::lock_guard lock(mu_);
    return steered_.size();
  }

 private:
  struct Steered {
    std::weak_ptr<VipRuntime> vip;  // weak: a removed VIP must close its listeners
    xdp::ReuseportProgram program;  // its own instance: its own socket array
  };
  mutable std::mutex mu_;  // reloads come from SIGHUP and from the control filesystem
  std::vector<Steered> steered_;
};

}  // namespace ringlb::daemon
