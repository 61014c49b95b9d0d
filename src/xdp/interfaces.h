// Interface names for messages (private to src/xdp).
#pragma once

#include <string>

namespace ringlb::xdp {

// The name of interface `ifindex`, or "interface N" when it has none.
std::string interface_name(int ifindex);

}  // namespace ringlb::xdp
