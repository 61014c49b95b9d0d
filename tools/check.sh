#!/usr/bin/env bash
# The test command: installs what is needed, builds ringlb (plain, ASan+UBSan, TSan) and
# runs every test. The plain build runs all tests; the sanitizer builds run the unit and
# proxy tests. Prints the ctest summary of each build. Needs root for packages and for the
# BPF, namespace and XDP tests (they skip, saying why, without it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

bash tools/setup.sh

configure_and_build() {  # dir, extra cmake args...
  local dir=$1
  shift
  mkdir -p "$dir"
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; return 1; }
  cmake --build "$dir" -j"$jobs"
}

status=0
configure_and_build build
(cd build && ctest --output-on-failure -j1 --timeout 900) || status=1

if [[ ${RINGLB_SKIP_SANITIZERS:-0} != 1 ]]; then
  configure_and_build build-asan -DRINGLB_SANITIZE=ON -DRINGLB_BENCHMARKS=OFF
  (cd build-asan && ctest --output-on-failure -L 'unit|proxy' --timeout 900) || status=1
  configure_and_build build-tsan -DRINGLB_TSAN=ON -DRINGLB_BENCHMARKS=OFF
  # TSan needs the usual address-space layout; setarch -R keeps high-entropy ASLR off it.
  (cd build-tsan && setarch "$(uname -m)" -R ctest --output-on-failure -L 'unit|proxy' --timeout 900) ||
    status=1
fi

# libFuzzer targets (clang, ASan+UBSan; tests/fuzz): only they are built, and each runs
# RINGLB_FUZZ_SECONDS (30 s) from its seed corpus in tests/fuzz/corpus. Crashes land in
# build-fuzz/tests/fuzz/fuzz-artifacts/.
if [[ ${RINGLB_SKIP_FUZZ:-0} != 1 ]]; then
  mkdir -p build-fuzz
  if CC=clang CXX=clang++ cmake -S "$root" -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRINGLB_FUZZ=ON -DRINGLB_BENCHMARKS=OFF >build-fuzz/configure.log 2>&1; then
    { cmake --build build-fuzz -j"$jobs" --target fuzz_targets &&
      (cd build-fuzz && ctest --output-on-failure -L fuzz); } || status=1
  else
    cat build-fuzz/configure.log
    status=1
  fi
fi
exit $status
