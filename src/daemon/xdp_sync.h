// XdpSync: ringlbd keeps the pinned XDP maps in step with every config it applies.
//
// Installed as the Runtime's publish hook, so every applied change takes this path: a
// reload, a control-filesystem write, a backend added or removed, a health change (the
// health monitor republishes through the Runtime). When the config has an [xdp] table and
// a program has pinned its maps under the pin root, the config's forward VIPs (and steered
// proxy VIPs) are written with xdp::apply_state(), the code `ringlb attach -c` and the
// `ringlb xdp` commands use, under the same StateLock. A backend takes new flows only when
// it is up, weighted above zero and healthy.
//
// Without pinned maps the daemon keeps serving its proxy VIPs: forward VIPs then have no
// data plane, which it logs once (and again once the maps appear). A change the maps
// cannot take (capacity, a table size or hash key other than the attached program's) is
// rejected whole: the hook runs before the Runtime publishes anything.
#pragma once

#include <string>
#include <vector>

#include "ringlb/proxy/runtime.h"
#include "ringlb/result.h"

namespace ringlb::daemon {

class XdpSync {
 public:
  explicit XdpSync(std::string pin_root) : pin_root_(std::move(pin_root)) {}

  // The publish hook (Runtime::PublishHook). Called under the Runtime's writer lock.
  Result<void> publish(const Config& config, const Runtime::BackendHealth& healthy);

 private:
  std::string pin_root_;
  bool attached_ = false;       // the last publish found pinned maps
  bool announced_ = false;      // the current attached_ state has been logged
  bool applied_ = false;        // the last publish wrote the maps
  std::vector<bool> admitted_;  // what the eligibility filter said then
  uint32_t generation_ = 0;     // the state's generation it left
};

}  // namespace ringlb::daemon
