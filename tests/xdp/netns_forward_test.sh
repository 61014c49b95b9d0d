#!/usr/bin/env bash
# Namespace integration test of forward mode (label integration, needs root).
#
#   client ns (10.77.0.100-.130) ─┐
#   lb ns     (10.77.0.2)      ─┼─ bridge in a switch ns
#   b1..b4 ns (10.77.0.21-.24) ─┘
#
# The lb runs ringlb natively on its veth (ringlb attach); VIP 10.78.0.10:80 is routed
# by the client via the lb. Backends hold the VIP on lo, strip IPIP with ringlb's decap
# program (ringlb decap attach; b2 runs its tc variant on clsact ingress, the others the
# XDP one) and answer the client directly (DSR: the reply never crosses the lb's stack).
# The same over IPv6 (VIP [fd00:78::10]:80, IP6IP6). Checks:
#   1. real TCP from several client addresses (IPv4 and IPv6) reaches the backend
#      `ringlb which` names, b2 (tc decap) among them, and `ringlb decap stats` on b2
#      shows what its tc hook decapsulated;
#   2. replies come straight from the backend (the lb saw only client->VIP packets);
#   3. adding a backend (ringlb attach with a grown config) keeps an open connection on
#      its backend, while a new connection from that client goes to the new backend;
#   4. detach removes the program and the pins; 5. decap detach --mode tc removes b2's
#      filter and its clsact qdisc.
# Everything (namespaces, mounts, processes, pins) is removed on exit, also on failure.
#
# Usage: netns_forward_test.sh RINGLB_BINARY PASS_OBJECT
# Exit 77: skipped (not root, or a missing tool).
set -euo pipefail

ringlb=$1
pass_obj=$2
id=$$
ns_sw=rlsw$id
ns_c=rlc$id
ns_l=rll$id
backends=(b1 b2 b3 b4)
tc_backend=b2 # decapsulates on clsact ingress (ringlb decap attach --mode tc)
tmp=$(mktemp -d /tmp/ringlb-netns.XXXXXX)
pins=$tmp/bpffs
pids=()

skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, XDP)"
for tool in ip socat ethtool mount tc; do
  command -v $tool >/dev/null || skip "missing $tool"
done

cleanup() {
  set +e
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
  # Processes started inside the test's namespaces (servers, clients), then the
  # namespaces themselves.
  for ns in $ns_c $ns_l $ns_sw "${backends[@]/#/rl$id}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  for ns in $ns_c $ns_l $ns_sw "${backends[@]/#/rl$id}"; do
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

# --- topology -------------------------------------------------------------------------
ip netns add $ns_sw
inns $ns_sw ip link add br0 type bridge
inns $ns_sw ip link set br0 up
inns $ns_sw ip link set lo up

host() {  # ns, port name in the switch, address/prefix[, unused, IPv6 address/prefix]
  local ns=$1 port=$2 addr=$3
  ip netns add "$ns"
  ip link add eth0 netns "$ns" type veth peer name "$port" netns $ns_sw
  inns $ns_sw ip link set "$port" master br0 up
  # A veth drops frames sent to it with XDP_TX unless its peer runs an XDP program.
  inns $ns_sw ip link set dev "$port" xdpdrv obj "$pass_obj" sec xdp
  inns "$ns" ip link set lo up
  inns "$ns" ip addr add "$addr" dev eth0
  [[ -z ${5:-} ]] || inns "$ns" ip -6 addr add "$5" dev eth0 nodad
  inns "$ns" ip link set eth0 up
}

host $ns_c pc 10.77.0.100/24 - fd00:77::100/64
for i in $(seq 101 130); do
  inns $ns_c ip addr add 10.77.0.$i/24 dev eth0
done
for i in $(seq 101 110); do
  inns $ns_c ip -6 addr add fd00:77::$i/64 dev eth0 nodad
done
inns $ns_c ip route add 10.78.0.10/32 via 10.77.0.2
inns $ns_c ip -6 route add fd00:78::10/128 via fd00:77::2
# The client's TCP checksums would be left to offload and arrive unfilled after XDP_TX.
inns $ns_c ethtool -K eth0 tx off >/dev/null

host $ns_l pl 10.77.0.2/24 - fd00:77::2/64
inns $ns_l sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

n=21
for b in "${backends[@]}"; do
  ns=rl$id$b
  host "$ns" "p$b" 10.77.0.$n/24 - fd00:77::$n/64
  inns "$ns" ip addr add 10.78.0.10/32 dev lo
  inns "$ns" ip -6 addr add fd00:78::10/128 dev lo nodad
  inns "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  inns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
  if [[ $b == "$tc_backend" ]]; then
    # Twice: attaching again replaces ringlb's filter.
    for _ in 1 2; do
      inns "$ns" "$ringlb" decap attach eth0 --mode tc --allow 10.77.0.2 --allow fd00:77::2 >/dev/null || fail "decap attach --mode tc in $ns"
    done
    # Outputs are captured before matching: `cmd | grep -q` under pipefail fails when
    # grep exits at its match and cmd still writes (SIGPIPE).
    filters=$(inns "$ns" tc filter show dev eth0 ingress)
    [[ $(grep -c 'ringlb_decap_tc' <<<"$filters") == 1 ]] ||
      fail "want one ringlb_decap_tc filter on $ns eth0 after attaching twice, have: $filters"
    link=$(inns "$ns" ip link show eth0)
    ! grep -q xdp <<<"$link" || fail "$ns eth0 has an XDP program"
  else
    inns "$ns" "$ringlb" decap attach eth0 --allow 10.77.0.2 --allow fd00:77::2 >/dev/null || fail "decap attach in $ns"
  fi
  # Each backend answers every line with its name, on a long-lived connection too.
  ip netns exec "$ns" socat TCP-LISTEN:80,bind=10.78.0.10,fork,reuseaddr \
    SYSTEM:"while read -r line; do echo $b; done" </dev/null >/dev/null 2>&1 &
  pids+=($!)
  ip netns exec "$ns" socat TCP6-LISTEN:80,bind=[fd00:78::10],fork,reuseaddr \
    SYSTEM:"while read -r line; do echo $b; done" </dev/null >/dev/null 2>&1 &
  pids+=($!)
  n=$((n + 1))
done

mkdir -p "$pins"
mount -t bpf bpf "$pins"

write_config() {  # file, number of backends
  local file=$1 count=$2
  cat >"$file" <<EOF
[daemon]
hash_seed = "00112233445566778899aabbccddeeff"
[xdp]
interface = "eth0"
attach = "native"
steer = false
[[vip]]
name = "web"
listen = "10.78.0.10:80"
mode = "forward"
EOF
  for i in $(seq 1 "$count"); do
    printf '[[vip.backend]]\nname = "b%d"\naddress = "10.77.0.%d"\n' "$i" $((20 + i)) >>"$file"
  done
  printf '[[vip]]\nname = "web6"\nlisten = "[fd00:78::10]:80"\nmode = "forward"\n' >>"$file"
  for i in $(seq 1 "$count"); do
    printf '[[vip.backend]]\nname = "b%d"\naddress = "fd00:77::%d"\n' "$i" $((20 + i)) >>"$file"
  done
}
write_config "$tmp/three.toml" 3
write_config "$tmp/four.toml" 4

inns $ns_l "$ringlb" attach eth0 -c "$tmp/three.toml" --pin-path "$pins/ringlb" >/dev/null ||
  fail "ringlb attach"

if [[ -n ${RINGLB_NETNS_DEBUG:-} ]]; then  # leave the topology up for a human
  trap - EXIT
  echo "debug: namespaces ${ns_c} ${ns_l} ${ns_sw} rl${id}b1..4, tmp $tmp"
  exit 0
fi

ask() {  # client address -> the backend name that answered one line
  inns $ns_c timeout 5 socat -t 2 - TCP:10.78.0.10:80,bind="$1",connect-timeout=3 <<<"hello" |
    head -n1
}
expected() {  # config, client address -> backend name
  "$ringlb" which -c "$1" --vip web "$2" | awk '{print $2}'
}

# Wait for the backends' listeners.
for _ in $(seq 1 10); do
  [[ -n $(ask 10.77.0.100 || true) ]] && break
  sleep 0.1
done

# --- 1. clients reach the backend the table names -------------------------------------
declare -A seen
for i in $(seq 100 130); do
  client=10.77.0.$i
  want=$(expected "$tmp/three.toml" $client)
  got=$(ask $client || true)
  [[ $got == "$want" ]] || fail "client $client: answered by '${got}', table names '$want'"
  seen[$got]=1
done
[[ ${#seen[@]} -ge 2 ]] || fail "31 clients all landed on one backend: ${!seen[*]}"
[[ -n ${seen[$tc_backend]:-} ]] || fail "$tc_backend (tc decap) served no client: ${!seen[*]}"
echo "ok 1 - 31 client addresses reached the backend the table names (${!seen[*]})"

# --- 1b. the same over IPv6 (IP6IP6) -------------------------------------------------
ask6() {
  inns $ns_c timeout 5 socat -t 2 - "TCP6:[fd00:78::10]:80,bind=[$1],connect-timeout=3" <<<"hello" |
    head -n1
}
declare -A seen6
for i in $(seq 100 110); do
  client=fd00:77::$i
  want=$("$ringlb" which -c "$tmp/three.toml" --vip web6 $client | awk '{print $2}')
  got=$(ask6 $client || true)
  [[ $got == "$want" ]] || fail "client $client: answered by '${got}', table names '$want'"
  seen6[$got]=1
done
[[ ${#seen6[@]} -ge 2 ]] || fail "11 IPv6 clients all landed on one backend: ${!seen6[*]}"
[[ -n ${seen6[$tc_backend]:-} ]] || fail "$tc_backend (tc decap) served no IPv6 client: ${!seen6[*]}"
echo "ok 1b - 11 IPv6 client addresses reached the backend the table names (${!seen6[*]})"
# The tc variant counts on its own hook: `ringlb decap stats` finds it there.
decap_stats=$(inns rl$id$tc_backend "$ringlb" decap stats eth0)
tc_decapsulated=$(awk '$1 == "decap.tc.decap.packets" {print $2}' <<<"$decap_stats")
[[ ${tc_decapsulated:-0} -gt 0 ]] || fail "decap stats on $tc_backend: $decap_stats"
! grep -q '^decap.xdp' <<<"$decap_stats" || fail "decap stats on $tc_backend shows an XDP hook"
echo "ok 1c - $tc_backend's tc decap counted $tc_decapsulated decapsulated packets"

# --- 2. direct server return -----------------------------------------------------------
# Backends have no route through the lb; had a reply crossed the lb's stack, it would
# show in the lb's Ip ForwDatagrams. XDP_TX bypasses the stack, so it stays 0.
snmp_field() {  # ns, field of the Ip: line of /proc/net/snmp
  inns "$1" awk -v f="$2" '/^Ip:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == f) c = i; n = 1 } else print $c }' /proc/net/snmp
}
forwarded=$(snmp_field $ns_l ForwDatagrams)
[[ $forwarded == 0 ]] || fail "the lb's stack forwarded $forwarded packets (replies not direct?)"
forwarded6=$(inns $ns_l awk '$1 == "Ip6OutForwDatagrams" {print $2}' /proc/net/snmp6)
[[ $forwarded6 == 0 ]] || fail "the lb's stack forwarded $forwarded6 IPv6 packets"
echo "ok 2 - replies went straight from backends to the client (lb forwarded 0 IPv4, 0 IPv6)"

# --- 3. adding a backend keeps established flows ----------------------------------------
mover=""
for i in $(seq 100 130); do
  client=10.77.0.$i
  if [[ $(expected "$tmp/four.toml" $client) == b4 ]]; then
    mover=$client
    break
  fi
done
[[ -n $mover ]] || fail "no client address moves to b4"
before=$(expected "$tmp/three.toml" "$mover")

coproc conn { inns $ns_c timeout 30 socat -t 5 - TCP:10.78.0.10:80,bind="$mover",connect-timeout=3; }
pids+=($conn_PID)
echo first >&"${conn[1]}"
read -r -t 5 first <&"${conn[0]}" || fail "no answer on the long-lived connection"
[[ $first == "$before" ]] || fail "long-lived connection from $mover answered by $first, want $before"

inns $ns_l "$ringlb" attach eth0 -c "$tmp/four.toml" --pin-path "$pins/ringlb" >/dev/null ||
  fail "ringlb attach (grown pool)"

echo second >&"${conn[1]}"
read -r -t 5 second <&"${conn[0]}" || fail "the established connection broke after adding b4"
[[ $second == "$before" ]] || fail "established connection moved from $before to $second"
new=$(ask "$mover" || true)
[[ $new == b4 ]] || fail "a new connection from $mover went to '$new', want b4"
echo "ok 3 - adding b4 kept the open connection on $before; a new one went to b4"

inns $ns_l "$ringlb" detach eth0 --pin-path "$pins/ringlb" --unpin >/dev/null || fail "ringlb detach"
[[ ! -e $pins/ringlb ]] || fail "detach --unpin left pins behind: $(ls "$pins/ringlb")"
echo "ok 4 - detach removed the program, every pin and the pin directory"

inns rl$id$tc_backend "$ringlb" decap detach eth0 --mode tc >/dev/null || fail "decap detach --mode tc"
qdiscs=$(inns rl$id$tc_backend tc qdisc show dev eth0)
! grep -q clsact <<<"$qdiscs" ||
  fail "decap detach --mode tc left a clsact qdisc on $tc_backend"
echo "ok 5 - decap detach --mode tc removed ringlb's filter and the clsact qdisc from $tc_backend"
