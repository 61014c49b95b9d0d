# Helpers of the namespace tests (netns_edit_test.sh, daemon_sync_test.sh,
# daemon_restart_test.sh): skip and fail, root and tool checks, the PIDs a test started,
# running inside a namespace, a switch with hosts.
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

# A switch namespace $ns_sw with a bridge, and hosts on it, each with an eth0 whose
# switch-side port runs the XDP_PASS program $pass_obj (netns_edit_test.sh,
# daemon_restart_test.sh).
switch_add() {
  ip netns add "$ns_sw"
  inns "$ns_sw" ip link add br0 type bridge
  inns "$ns_sw" ip link set br0 up
  inns "$ns_sw" ip link set lo up
}
host() {  # ns, port name in the switch, address/prefix
  local ns=$1 port=$2 addr=$3
  ip netns add "$ns"
  ip link add eth0 netns "$ns" type veth peer name "$port" netns "$ns_sw"
  inns "$ns_sw" ip link set "$port" master br0 up
  # A veth drops frames sent to it with XDP_TX unless its peer runs an XDP program.
  inns "$ns_sw" ip link set dev "$port" xdpdrv obj "$pass_obj" sec xdp
  inns "$ns" ip link set lo up
  inns "$ns" ip addr add "$addr" dev eth0
  inns "$ns" ip link set eth0 up
}
