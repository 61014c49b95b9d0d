#!/usr/bin/env bash
# ECMP scale-out test (label integration, needs root).
#
#   client (10.81.0.100) ── router ══ multipath route to the VIP via lb1 and lb2
#                              │
#          bridge 10.82.0.0/24: router .1, lb1 .2, lb2 .3, b1..b3 .21-.23
#
# Both balancers run ringlb with the same config (same seed, same backends), so they
# build the same Maglev table. Backends decapsulate (ringlb decap), hold the VIP on lo
# and answer through the router, never through a balancer. A long-running connection
# (a line every 50 ms, each answered with the backend's name) must survive:
#   1. the removal of the balancer it was not using, then
#   2. the removal of the balancer it was using (the other one has no flow entry for it
#      and picks the same backend from its identical table).
# Everything is removed on exit, also on failure.
#
# Usage: netns_ecmp_test.sh RINGLB_BINARY PASS_OBJECT
# Exit 77: skipped.
set -euo pipefail

ringlb=$1
pass_obj=$2
id=$$
ns_sw=rlesw$id
ns_c=rlec$id
ns_r=rler$id
ns_l1=rlel1$id
ns_l2=rlel2$id
backends=(b1 b2 b3)
all_ns=($ns_c $ns_r $ns_l1 $ns_l2 $ns_sw "${backends[@]/#/rle$id}")
tmp=$(mktemp -d /tmp/ringlb-ecmp.XXXXXX)
pins=$tmp/bpffs

skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, XDP)"
for tool in ip socat ethtool mount; do
  command -v $tool >/dev/null || skip "missing $tool"
done

cleanup() {
  set +e
  exec {conn_in}>&- 2>/dev/null
  for ns in "${all_ns[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  for ns in "${all_ns[@]}"; do
    ip netns del "$ns" 2>/dev/null
  done
  mountpoint -q "$pins" && umount "$pins"
  rm -rf "$tmp"
}
trap cleanup EXIT

inns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

ip netns add $ns_sw
inns $ns_sw ip link add br0 type bridge
inns $ns_sw ip link set br0 up

host() {  # ns, switch port, address/prefix, device name in ns
  local ns=$1 port=$2 addr=$3 dev=${4:-eth0}
  [[ -e /run/netns/$ns ]] || ip netns add "$ns"
  ip link add "$dev" netns "$ns" type veth peer name "$port" netns $ns_sw
  inns $ns_sw ip link set "$port" master br0 up
  inns $ns_sw ip link set dev "$port" xdpdrv obj "$pass_obj" sec xdp
  inns "$ns" ip link set lo up
  inns "$ns" ip addr add "$addr" dev "$dev"
  inns "$ns" ip link set "$dev" up
}

# Client and router: a point-to-point link.
ip netns add $ns_c
ip netns add $ns_r
ip link add eth0 netns $ns_c type veth peer name up0 netns $ns_r
inns $ns_c ip link set lo up
inns $ns_c ip addr add 10.81.0.100/24 dev eth0
inns $ns_c ip link set eth0 up
inns $ns_c ip route add default via 10.81.0.1
inns $ns_c ethtool -K eth0 tx off >/dev/null
inns $ns_r ip link set lo up
inns $ns_r ip addr add 10.81.0.1/24 dev up0
inns $ns_r ip link set up0 up
inns $ns_r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1

host $ns_r pr 10.82.0.1/24 down0
host $ns_l1 pl1 10.82.0.2/24
host $ns_l2 pl2 10.82.0.3/24
for ns in $ns_l1 $ns_l2; do
  inns $ns sysctl -qw net.ipv4.ip_forward=1
done
inns $ns_r ip route add 10.78.0.10/32 nexthop via 10.82.0.2 nexthop via 10.82.0.3

n=21
for b in "${backends[@]}"; do
  ns=rle$id$b
  host "$ns" "p$b" 10.82.0.$n/24
  inns "$ns" ip addr add 10.78.0.10/32 dev lo
  inns "$ns" ip route add 10.81.0.0/24 via 10.82.0.1
  inns "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  inns "$ns" "$ringlb" decap attach eth0 --allow 10.82.0.2 --allow 10.82.0.3 >/dev/null || fail "decap attach in $ns"
  ip netns exec "$ns" socat TCP-LISTEN:80,bind=10.78.0.10,fork,reuseaddr \
    SYSTEM:"while read -r line; do echo $b; done" </dev/null >/dev/null 2>&1 &
  n=$((n + 1))
done

mkdir -p "$pins"
mount -t bpf bpf "$pins"
cat >"$tmp/lb.toml" <<EOF
[daemon]
hash_seed = "8899aabbccddeeff0011223344556677"
[xdp]
interface = "eth0"
steer = false
[[vip]]
name = "web"
listen = "10.78.0.10:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.82.0.21"
[[vip.backend]]
name = "b2"
address = "10.82.0.22"
[[vip.backend]]
name = "b3"
address = "10.82.0.23"
EOF
inns $ns_l1 "$ringlb" attach eth0 -c "$tmp/lb.toml" --pin-path "$pins/lb1" >/dev/null || fail "attach lb1"
inns $ns_l2 "$ringlb" attach eth0 -c "$tmp/lb.toml" --pin-path "$pins/lb2" >/dev/null || fail "attach lb2"

want=$("$ringlb" which -c "$tmp/lb.toml" --vip web 10.81.0.100 | awk '{print $2}')

# Wait until the path works.
for _ in $(seq 1 20); do
  got=$(inns $ns_c timeout 3 socat -t 1 - TCP:10.78.0.10:80,connect-timeout=2 <<<"x" 2>/dev/null | head -n1 || true)
  [[ -n $got ]] && break
  sleep 0.2
done
[[ $got == "$want" ]] || fail "a first connection answered by '$got', table names '$want'"

rx() {  # ns -> packets received on eth0
  inns "$1" cat /sys/class/net/eth0/statistics/rx_packets
}

# The long-running connection, driven line by line through a fifo.
mkfifo "$tmp/in" "$tmp/out"
ip netns exec $ns_c timeout 60 socat -t 10 - TCP:10.78.0.10:80,connect-timeout=3 \
  <"$tmp/in" >"$tmp/out" 2>/dev/null &
exec {conn_in}>"$tmp/in"
exec {conn_out}<"$tmp/out"

exchange() {  # count: send `count` lines and check every answer
  local i answer
  for i in $(seq 1 "$1"); do
    echo "line $i" >&$conn_in
    read -r -t 5 answer <&$conn_out || fail "no answer on the long-running connection ($2)"
    [[ $answer == "$want" ]] || fail "answered by $answer, want $want ($2)"
    sleep 0.05
  done
}

rx1=$(rx $ns_l1)
rx2=$(rx $ns_l2)
exchange 20 "both balancers up"
d1=$(($(rx $ns_l1) - rx1))
d2=$(($(rx $ns_l2) - rx2))
if ((d1 >= 20 && d1 > d2)); then
  used=$ns_l1 used_ip=10.82.0.2 other=$ns_l2 other_ip=10.82.0.3 other_port=pl2 used_port=pl1
elif ((d2 >= 20 && d2 > d1)); then
  used=$ns_l2 used_ip=10.82.0.3 other=$ns_l1 other_ip=10.82.0.2 other_port=pl1 used_port=pl2
else
  fail "cannot tell which balancer carries the flow (lb1 +$d1, lb2 +$d2 packets)"
fi
echo "ok 1 - the connection runs through $used, answered by $want"

# Remove the balancer the flow does not use: the router drops it from the route.
inns $ns_r ip route replace 10.78.0.10/32 via $used_ip
inns $ns_sw ip link set $other_port down
exchange 20 "after removing the unused balancer"
echo "ok 2 - the connection survived the removal of the unused balancer"

# Remove the balancer it uses: the flow moves to the other one, which has never seen it.
inns $ns_sw ip link set $other_port up
inns $ns_r ip route replace 10.78.0.10/32 via $other_ip
inns $ns_sw ip link set $used_port down
rx_other=$(rx $other)
exchange 20 "after removing the balancer in use"
(($(rx $other) - rx_other >= 20)) || fail "the flow did not move to the remaining balancer"
echo "ok 3 - the connection moved to the other balancer and kept its backend ($want)"
