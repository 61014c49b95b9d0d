# Helpers of the namespace tests (netns_edit_test.sh, netns_flood_test.sh, daemon_sync_test.sh,
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

# A backend of a forward VIP on the switch: host NS at ADDR, holding VIP on lo (ARP kept
# quiet), stripping the tunnels of the balancer at ALLOW with `$ringlb decap attach`, and
# answering every line with NAME on port 80, on a long-lived connection too.
backend_add() {  # ns, switch port, address/prefix, vip, allow, name
  local ns=$1 port=$2 addr=$3 vip=$4 allow=$5 name=$6
  host "$ns" "$port" "$addr"
  inns "$ns" ip addr add "$vip/32" dev lo
  inns "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  inns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
  inns "$ns" "$ringlb" decap attach eth0 --allow "$allow" >/dev/null || fail "decap attach in $ns"
  ip netns exec "$ns" socat TCP-LISTEN:80,bind="$vip",fork,reuseaddr \
    SYSTEM:"while read -r line; do echo $name; done" </dev/null >/dev/null 2>&1 &
  pids+=($!)
}

# The forward-mode lab on the switch: the client $ns_c at NET.100 (and NET.101 up to
# NET.(100 + EXTRA)) routing VIP's /24 through the balancer $ns_l at NET.2, a backend
# PREFIX$name at NET.21, NET.22, ... for each name in $backends, and a bpffs at $pins.
forward_lab_add() {  # net (10.79.0), vip (10.80.0.10), backend namespace prefix, extra
  local net=$1 vip=$2 prefix=$3 extra=$4 n=21 i b
  switch_add
  host "$ns_c" pc "$net.100/24"
  for i in $(seq 101 $((100 + extra))); do
    inns "$ns_c" ip addr add "$net.$i/24" dev eth0
  done
  inns "$ns_c" ip route add "${vip%.*}.0/24" via "$net.2"
  # The client's TCP checksums would be left to offload and arrive unfilled after XDP_TX.
  inns "$ns_c" ethtool -K eth0 tx off >/dev/null
  host "$ns_l" pl "$net.2/24"
  inns "$ns_l" sysctl -qw net.ipv4.ip_forward=1  # bpf_fib_lookup needs it
  for b in "${backends[@]}"; do
    backend_add "$prefix$b" "p$b" "$net.$n/24" "$vip" "$net.2/32" "$b"
    n=$((n + 1))
  done
  mkdir -p "$pins"
  mount -t bpf bpf "$pins"
}

# Kills what runs in the namespaces given, then deletes them.
del_namespaces() {
  local ns
  for ns in "$@"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  for ns in "$@"; do
    ip netns del "$ns" 2>/dev/null
  done
}
