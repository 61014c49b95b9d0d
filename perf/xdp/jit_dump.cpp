// Writes a loaded BPF program's jited image and where each source line starts in it, for
// perf/xdp/profile.py (bpftool here has no disassembler and cannot dump jited code).
//
//   jit_dump PROG_ID IMAGE LINES
//       IMAGE gets the raw x86-64 image; LINES gets one "offset file:line" row per line-info
//       record (offset into the image, file name without its directory).
//
// Needs root. Reads only; the program keeps running.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "jit_dump: %s\n", message.c_str());
  std::exit(1);
}

bool write_file(const char* path, const void* data, size_t size) {
  FILE* f = std::fopen(path, "wb");
  if (f == nullptr) {
    return false;
  }
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    die("usage: jit_dump PROG_ID IMAGE LINES");
  }
  char* end = nullptr;
  const unsigned long id = std::strtoul(argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || id == 0 || id > UINT32_MAX) {
    die(std::string("not a program id: ") + argv[1]);
  }
  const int fd = bpf_prog_get_fd_by_id(static_cast<uint32_t>(id));
  if (fd < 0) {
    die("program " + std::string(argv[1]) + ": " + std::strerror(errno));
  }
  // First the sizes, then the arrays.
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    die(std::string("program info: ") + std::strerror(errno));
  }
  if (info.jited_prog_len == 0 || info.nr_jited_ksyms != 1) {
    die("not one jited function (the tool reads single-function programs)");
  }
  std::vector<uint8_t> image(info.jited_prog_len);
  std::vector<bpf_line_info> lines(info.nr_line_info);
  std::vector<uint64_t> jited_lines(info.nr_jited_line_info);
  uint64_t ksym = 0;
  const uint32_t btf_id = info.btf_id;
  info = bpf_prog_info{};
  info.jited_prog_len = static_cast<uint32_t>(image.size());
  info.jited_prog_insns = reinterpret_cast<uintptr_t>(image.data());
  info.nr_line_info = static_cast<uint32_t>(lines.size());
  info.line_info_rec_size = sizeof(bpf_line_info);
  info.line_info = reinterpret_cast<uintptr_t>(lines.data());
  info.nr_jited_line_info = static_cast<uint32_t>(jited_lines.size());
  info.jited_line_info_rec_size = sizeof(uint64_t);
  info.jited_line_info = reinterpret_cast<uintptr_t>(jited_lines.data());
  info.nr_jited_ksyms = 1;
  info.jited_ksyms = reinterpret_cast<uintptr_t>(&ksym);
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    die(std::string("program image: ") + std::strerror(errno));
  }
  close(fd);
  if (!write_file(argv[2], image.data(), image.size())) {
    die(std::string("writing ") + argv[2] + ": " + std::strerror(errno));
  }
  btf* types = btf__load_from_kernel_by_id(btf_id);
  if (types == nullptr) {
    die("the program's BTF: " + std::string(std::strerror(errno)));
  }
  std::string out;
  for (size_t i = 0; i < lines.size() && i < jited_lines.size(); ++i) {
    const char* file = btf__name_by_offset(types, lines[i].file_name_off);
    const char* slash = file != nullptr ? std::strrchr(file, '/') : nullptr;
    out += std::to_string(jited_lines[i] - ksym) + " " +
           (slash != nullptr ? slash + 1 : (file != nullptr ? file : "?")) + ":" +
           std::to_string(lines[i].line_col >> 10) + "\n";
  }
  btf__free(types);
  if (!write_file(argv[3], out.data(), out.size())) {
    die(std::string("writing ") + argv[3] + ": " + std::strerror(errno));
  }
  return 0;
}
