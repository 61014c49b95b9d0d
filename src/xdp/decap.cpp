// The decap program (decap.h): its skeleton, and its XDP entry point on the hook. The tc
// entry point's attachment is in tc_attach.cpp.
#include "ringlb/xdp/decap.h"

#include <bpf/libbpf.h>

#include <cerrno>

#include "hook.h"
#include "libbpf_log.h"
#include "ringlb_decap.skel.h"

namespace ringlb::xdp {
namespace {

// The name the kernel gives the XDP entry point (bpf_prog_info.name): how detach tells
// ringlb's program from another one.
constexpr std::string_view kDecapXdpName = "ringlb_decap";

}  // namespace

void SkeletonDeleter::operator()(ringlb_decap* skel) const {
  ringlb_decap__destroy(skel);
}

Result<DecapProgram> DecapProgram::load() {
  LogCapture log;
  DecapProgram program;
  program.skel_.reset(ringlb_decap__open_and_load());
  if (!program.skel_) {
    return libbpf_error("Failed to load the decap program", errno, &log);
  }
  return program;
}

Result<void> DecapProgram::attach(int ifindex, XdpAttach mode, bool replace_other) const {
  return attach_program(ifindex, fd(), mode, replace_other);
}

int DecapProgram::fd() const {
  return bpf_program__fd(skel_->progs.ringlb_decap);
}

int DecapProgram::tc_fd() const {
  return bpf_program__fd(skel_->progs.ringlb_decap_tc);
}

int DecapProgram::stats_fd() const {
  return bpf_map__fd(skel_->maps.decap_stats);
}

Result<bool> detach_decap_xdp(int ifindex) {
  return detach_named(ifindex, kDecapXdpName, "decap XDP program");
}

}  // namespace ringlb::xdp
