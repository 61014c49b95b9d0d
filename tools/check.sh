#!/usr/bin/env bash
# The test command: installs what is needed, builds ringlb (plain, ASan+UBSan, TSan) and
# runs every test. The plain build runs all tests; the sanitizer builds run the unit,
# proxy and chaos tests. Prints the ctest summary of each build. Needs root for packages and for the
# BPF, namespace and XDP tests (they skip, saying why, without it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

bash tools/setup.sh

configure_and_build() {  # dir, "target..." or "" for all, extra cmake args...
  local dir=$1 targets=$2
  shift 2
  mkdir -p "$dir"
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; return 1; }
  # shellcheck disable=SC2086 # the target list splits on spaces
  cmake --build "$dir" -j"$jobs" ${targets:+--target $targets}
}

# The sanitizer builds run the unit, proxy and chaos tests, so they build only the
# executables those labels name (a CI run on two cores spends minutes on each full build).
sanitized_labels='unit|proxy|chaos'
sanitized_targets="unit_tests proxy_unit_tests proxy_tests control_tests xdp_state_tests xdp_plan_tests
  xdp_forward_tree_tests telemetry_tests metrics_http_tests
  fuzz_replay_config fuzz_replay_control chaos_tests chaos_backend"
labelled_tests() {  # dir: how many tests of the sanitizer labels the build dir knows
  (cd "$1" && ctest -N -L "$sanitized_labels" | sed -n 's/^Total Tests: //p')
}
run_sanitized() {  # dir, ctest prefix command...
  local dir=$1
  shift
  local rc=0
  (cd "$dir" && "$@" ctest --output-on-failure -L "$sanitized_labels" --timeout 900) || rc=1
  keep_test_log "$dir"
  ((rc == 0)) || return 1
  # A test executable missing from the target list would silently drop its tests.
  local want have
  want=$(labelled_tests build) have=$(labelled_tests "$dir")
  [[ $have == "$want" ]] ||
    { echo "$dir ran $have '$sanitized_labels' tests, the plain build has $want:" \
      "add the missing executable to sanitized_targets in tools/check.sh"; return 1; }
}

# A failed test's output is printed again at the very end (a CI log is often read from
# its tail): the gtest failure lines and the last lines of each failed test's output.
# ctest rewrites LastTest.log on every call, `ctest -N` included, so each run's copy is
# kept as tests-run.log.
failed_dirs=()
keep_test_log() {  # dir
  cp -f "$1/Testing/Temporary/LastTest.log" "$1/tests-run.log" 2>/dev/null || true
}
recap_failures() {
  local dir log
  for dir in "${failed_dirs[@]}"; do
    log=$dir/tests-run.log
    [[ -f $dir/Testing/Temporary/LastTestsFailed.log && -f $log ]] || continue
    while IFS=: read -r _ name; do
      echo "==== $dir: $name (failed) ===="
      awk -v t="$name" '$0 ~ "Testing: " t "$" {on=1} on {print} on && $0 ~ "^\"" t "\" end time" {exit}' \
        "$log" | grep -v '^\[ *\(RUN\|OK\) ' | tail -n 60
    done <"$dir/Testing/Temporary/LastTestsFailed.log"
  done
}

status=0
configure_and_build build ""
(cd build && ctest --output-on-failure -j1 --timeout 900) || { status=1; failed_dirs+=(build); }
keep_test_log build

if [[ ${RINGLB_SKIP_SANITIZERS:-0} != 1 ]]; then
  configure_and_build build-asan "$sanitized_targets" -DRINGLB_SANITIZE=ON -DRINGLB_BENCHMARKS=OFF
  run_sanitized build-asan || { status=1; failed_dirs+=(build-asan); }
  configure_and_build build-tsan "$sanitized_targets" -DRINGLB_TSAN=ON -DRINGLB_BENCHMARKS=OFF
  # TSan needs the usual address-space layout; setarch -R keeps high-entropy ASLR off it.
  run_sanitized build-tsan setarch "$(uname -m)" -R || { status=1; failed_dirs+=(build-tsan); }
fi

# libFuzzer targets (clang, ASan+UBSan; tests/fuzz): only they are built, and each runs
# RINGLB_FUZZ_SECONDS (30 s) from its seed corpus in tests/fuzz/corpus, one per core.
# Crashes land in build-fuzz/tests/fuzz/fuzz-artifacts/.
if [[ ${RINGLB_SKIP_FUZZ:-0} != 1 ]]; then
  mkdir -p build-fuzz
  if CC=clang CXX=clang++ cmake -S "$root" -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRINGLB_FUZZ=ON -DRINGLB_BENCHMARKS=OFF >build-fuzz/configure.log 2>&1; then
    { cmake --build build-fuzz -j"$jobs" --target fuzz_targets &&
      (cd build-fuzz && ctest --output-on-failure -L fuzz -j"$jobs"); } ||
      { status=1; failed_dirs+=(build-fuzz); }
    keep_test_log build-fuzz
  else
    cat build-fuzz/configure.log
    status=1
  fi
fi
if ((${#failed_dirs[@]})); then
  recap_failures
fi
exit $status
