# Helpers of the namespace tests (netns_edit_test.sh, daemon_sync_test.sh): skip and
# fail, root and tool checks, the PIDs a test started, running inside a namespace.
# A test sources it, then sets its own EXIT trap that calls kill_started.
pids=()
skip() {
  echo "SKIP: $*"
  exit 77
}
# fail MESSAGE: with $fail_log set, its lines follow the message.
fail() {
  echo "FAIL: $*" >&2
  [[ -n ${fail_log:-} && -f $fail_log ]] && sed 's/^/log: /' "$fail_log" >&2
  exit 1
}
# need_root WHY TOOL...: skip unless root and every tool is installed.
need_root() {
  [[ $(id -u) == 0 ]] || skip "needs root ($1)"
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || skip "missing $tool"
  done
}
# Kills the processes in $pids (only those: the test started them) and reaps them.
kill_started() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
}
inns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
