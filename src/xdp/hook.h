// The XDP hook, for the library's own programs (private to src/xdp; attach.h has the
// public half). Everything that asks the kernel what is attached is in hook.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringlb/config/config.h"
#include "ringlb/result.h"

namespace ringlb::xdp {

// The name of the BPF program with id `id` (bpf_prog_info.name), or an error.
Result<std::string> program_name(uint32_t id);

// Attaches `prog_fd` to the XDP hook in `mode`. A program of the same name (ringlb's,
// from an earlier attach) is replaced atomically in the same mode: XDP_FLAGS_REPLACE
// names the program expected there, so nothing in between sees no program, and a
// concurrent change fails the attach instead of being overwritten. Another tool's program
// is replaced only with `replace_other`; otherwise the attach fails, changing nothing,
// and says how to go on.
Result<void> attach_program(int ifindex, int prog_fd, XdpAttach mode, bool replace_other);

// An XDP program on the hook: its id and the mode it is attached in (XDP_FLAGS_DRV_MODE or
// XDP_FLAGS_SKB_MODE).
struct NamedProgram {
  uint32_t id = 0;
  uint32_t flags = 0;
};

// The programs named `name` on the XDP hook of `ifindex` (native, then generic).
Result<std::vector<NamedProgram>> named_programs(int ifindex, std::string_view name);

// Detaches the program named `name` from the XDP hook, in whichever modes it is attached
// (native, generic). Returns false, changing nothing, when no program of that name is
// there. Errors call it `what` ("decap XDP program").
Result<bool> detach_named(int ifindex, std::string_view name, std::string_view what);

}  // namespace ringlb::xdp
