// The one validator of a set of VIPs, whoever wrote them: the config file (which adds
// the file position of each problem), the control filesystem's edits, `ringlb xdp` and
// the XDP map state. It checks what one field alone cannot: names and their
// uniqueness, listen addresses, the ranges of fields.h, forward-mode backend addresses
// and, for the XDP maps, their capacities.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ringlb/model/model.h"

namespace ringlb {

// One thing wrong: the setting's path ("vip[web].backend[b1].weight") and the message
// ("expected an integer in 0..10000, got 20000").
struct Problem {
  std::string path;
  std::string message;
  std::string text() const { return path + ": " + message; }
};

// What the XDP maps can hold (xdp_abi.h's RINGLB_MAX_*): passed by the XDP layer.
struct Capacities {
  size_t vips = 0;
  size_t backend_addresses = 0;  // distinct forward backend addresses not down
  size_t members = 0;            // backends over all forward VIPs
};

// Every problem of `vips`, in order. Paths name a VIP or backend by its name, even an
// invalid one (what an operator typed), and by position when it has none ("vip[0]").
std::vector<Problem> validate_vips(std::span<const VipSpec> vips,
                                   const std::optional<Capacities>& capacities = std::nullopt);

// The problems as one message, a line each; empty when there are none.
std::string problems_text(const std::vector<Problem>& problems);

}  // namespace ringlb
