// Steer mode's sk_reuseport program (reuseport.h).
#include "ringlb/xdp/reuseport.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "libbpf_log.h"
#include "ringlb_reuseport.skel.h"

namespace ringlb::xdp {

void SkeletonDeleter::operator()(ringlb_reuseport* skel) const {
  ringlb_reuseport__destroy(skel);
}

Result<ReuseportProgram> ReuseportProgram::load(uint32_t steer_workers,
                                                const ringlb_hash_key& hash_key) {
  if (steer_workers == 0 || steer_workers > RINGLB_MAX_WORKERS) {
    return Error{"Failed to configure the reuseport program: bad worker count " +
                     std::to_string(steer_workers),
                 EINVAL};
  }
  LogCapture log;
  ReuseportProgram program;
  program.skel_.reset(ringlb_reuseport__open());
  if (!program.skel_) {
    return libbpf_error("Failed to open the reuseport program", errno, &log);
  }
  program.skel_->rodata->hash_key_k0 = hash_key.k0;
  program.skel_->rodata->hash_key_k1 = hash_key.k1;
  program.skel_->rodata->steer_workers = steer_workers;
  if (const int err = ringlb_reuseport__load(program.skel_.get()); err != 0) {
    return libbpf_error("Failed to load the reuseport program", err, &log);
  }
  return program;
}

Result<void> ReuseportProgram::set_worker_socket(uint32_t worker, int listener_fd) const {
  const uint64_t fd = static_cast<uint64_t>(listener_fd);
  if (bpf_map_update_elem(sockets_fd(), &worker, &fd, BPF_ANY) != 0) {
    return system_error("worker socket array", errno);
  }
  return {};
}

Result<void> ReuseportProgram::attach(int listener_fd) const {
  const int prog = fd();
  if (::setsockopt(listener_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog)) != 0) {
    return system_error("SO_ATTACH_REUSEPORT_EBPF", errno);
  }
  return {};
}

int ReuseportProgram::fd() const {
  return bpf_program__fd(skel_->progs.ringlb_reuseport);
}

int ReuseportProgram::sockets_fd() const {
  return bpf_map__fd(skel_->maps.worker_sockets);
}

}  // namespace ringlb::xdp
