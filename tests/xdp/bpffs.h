// A bpffs mounted by the test itself, for tests that pin maps: pins start empty, need no
// /sys/fs/bpf on the host, and go away with the unmount, also when the test fails.
#pragma once

#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <string>

namespace ringlb::test {

class ScratchBpffs {
 public:
  ScratchBpffs() {
    char dir[] = "/tmp/ringlb-bpffs-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
      return;
    }
    path_ = dir;
    mounted_ = mount("bpf", dir, "bpf", 0, nullptr) == 0;
  }
  ~ScratchBpffs() {
    if (mounted_) {
      umount2(path_.c_str(), MNT_DETACH);
    }
    if (!path_.empty()) {
      rmdir(path_.c_str());
    }
  }
  ScratchBpffs(const ScratchBpffs&) = delete;
  ScratchBpffs& operator=(const ScratchBpffs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

}  // namespace ringlb::test
