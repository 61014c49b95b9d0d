#!/usr/bin/env bash
# Fragmented UDP through the XDP data plane (issue 16), in network namespaces (label
# integration, needs root).
#
#   client ns (10.87.0.100-.115, MTU 1500) ─┐
#   lb ns     (10.87.0.2, MTU 2000)         ─┼─ bridge in a switch ns
#   b1..b3 ns (10.87.0.21-.23, MTU 2000)    ─┘
#
# Forward VIP 10.88.0.10:5353/udp over b1..b3 (and 10.88.0.10:80/tcp). The client sends
# datagrams of 4,000 bytes, which its kernel cuts into three fragments; the balancer sends
# each fragment by the client's hash (later fragments carry no ports), the backends strip
# the tunnel and their kernels reassemble. The path from the balancer to the backends takes
# a fragment of 1,500 bytes plus the tunnel header. Checks:
#   1. every client's datagram reaches the backend `ringlb which` names, whole (its answer
#      gives the length and SHA-256 it received), and so do small unfragmented ones;
#   2. the balancer counted the fragments as tx_fragment and passed none;
#   3. with a second UDP VIP on the same address (another port) a fragment's VIP is
#      ambiguous: fragments pass to the balancer's kernel (pass_fragment), no answer;
#   4. `ringlb decap stats` on a backend shows what it decapsulated, and tunnel packets
#      from a host that is not the balancer (the client, spoofing the inner source) are
#      dropped and counted as drop_source.
# Everything (namespaces, mounts, processes, pins) is removed on exit, also on failure.
#
# Usage: netns_fragment_test.sh RINGLB_BINARY PASS_OBJECT
# Exit 77: skipped (not root, or a missing tool).
set -euo pipefail

ringlb=$1
pass_obj=$2
here=$(cd "$(dirname "$0")" && pwd)
id=$$
ns_sw=rgsw$id
ns_c=rgc$id
ns_l=rgl$id
backends=(b1 b2 b3)
tmp=$(mktemp -d /tmp/ringlb-frag.XXXXXX)
pins=$tmp/bpffs
pin=$pins/ringlb
source "$here/lib.sh"

need_root "network namespaces, XDP" ip socat ethtool mount python3

cleanup() {
  set +e
  kill_started
  del_namespaces $ns_c $ns_l $ns_sw "${backends[@]/#/rg$id}"
  mountpoint -q "$pins" && umount "$pins"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 143" TERM INT

# --- topology -------------------------------------------------------------------------
forward_lab_add 10.87.0 10.88.0.10 rg$id 15
clients=()
for i in $(seq 100 115); do
  clients+=(10.87.0.$i)
done
# Room for a client's 1,500-byte fragment and the tunnel's 20 bytes between the balancer
# and the backends (native XDP on a veth takes an MTU this size); the client stays at 1,500.
inns $ns_l ip link set eth0 mtu 2000
inns $ns_sw ip link set pl mtu 2000
for b in "${backends[@]}"; do
  inns rg$id$b ip link set eth0 mtu 2000
  inns $ns_sw ip link set "p$b" mtu 2000
  ip netns exec rg$id$b python3 "$here/udp_tools.py" serve "$b" 10.88.0.10 5353 \
    </dev/null >/dev/null 2>&1 &
  pids+=($!)
done

write_config() {  # file, extra VIP text
  cat >"$1" <<EOT
[daemon]
hash_seed = "1f2e3d4c5b6a79880011223344556677"
[xdp]
interface = "eth0"
steer = false
[[vip]]
name = "dns"
listen = "10.88.0.10:5353"
protocol = "udp"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.87.0.21"
[[vip.backend]]
name = "b2"
address = "10.87.0.22"
[[vip.backend]]
name = "b3"
address = "10.87.0.23"
[[vip]]
name = "web"
listen = "10.88.0.10:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.87.0.21"
${2:-}
EOT
}
write_config "$tmp/one.toml"
write_config "$tmp/two.toml" '[[vip]]
name = "dns2"
listen = "10.88.0.10:5354"
protocol = "udp"
mode = "forward"
[[vip.backend]]
name = "b2"
address = "10.87.0.22"'
inns $ns_l "$ringlb" attach eth0 -c "$tmp/one.toml" --pin-path "$pin" >/dev/null ||
  fail "ringlb attach"

verdict() {  # name -> its count in ringlb stats
  inns $ns_l "$ringlb" stats --pin-path "$pin" --control-dir "$tmp/no-daemon" |
    awk -v k="xdp.verdict.$1.packets" '$1 == k {print $2}'
}
ask() {  # size, sources... -> "SOURCE BACKEND OK|BAD|NONE" lines
  local size=$1
  shift
  inns $ns_c timeout 120 python3 "$here/udp_tools.py" ask 10.88.0.10 5353 "$size" "$@"
}
for _ in $(seq 1 30); do  # the backends' servers
  [[ $(ask 100 10.87.0.100) == *OK ]] && break
  sleep 0.2
done

# --- 1. fragmented and whole datagrams reach the table's backend ----------------------------
forwarded_before=$(verdict tx_fragment)
for size in 4000 200; do
  answers=$(ask $size "${clients[@]}")
  declare -A seen=()
  for c in "${clients[@]}"; do
    line=$(awk -v c="$c" '$1 == c' <<<"$answers")
    want=$("$ringlb" which -c "$tmp/one.toml" --vip dns "$c" | awk '{print $2}')
    [[ $line == "$c $want OK" ]] ||
      fail "a datagram of $size bytes from $c: answer '$line', the table names $want"
    seen[$want]=1
  done
  echo "ok 1 - ${#clients[@]} datagrams of $size bytes, each whole on the backend the table names" \
    "(backends used: ${!seen[*]})"
done
[[ ${#seen[@]} -ge 2 ]] || fail "all clients on one backend: the check would prove nothing"

# --- 2. the balancer's counters ---------------------------------------------------------------
forwarded=$(($(verdict tx_fragment) - forwarded_before))
passed=$(verdict pass_fragment)
[[ $forwarded -ge $((3 * ${#clients[@]})) ]] ||
  fail "tx_fragment counted $forwarded, want 3 for each of ${#clients[@]} datagrams"
[[ $passed == 0 ]] || fail "pass_fragment counted $passed"
echo "ok 2 - $forwarded fragments forwarded by the client hash, none passed"

# --- 3. two VIPs on the address and protocol: fragments go to the kernel -----------------
inns $ns_l "$ringlb" attach eth0 -c "$tmp/two.toml" --pin-path "$pin" >/dev/null ||
  fail "ringlb attach (a second UDP VIP)"
line=$(ask 4000 10.87.0.100)
[[ $line == "10.87.0.100 - NONE" ]] || fail "with two UDP VIPs, a fragmented datagram got '$line'"
line=$(ask 200 10.87.0.101)
[[ $line == *" OK" ]] || fail "with two UDP VIPs, a whole datagram got '$line'"
passed=$(verdict pass_fragment)
[[ $passed -ge 3 ]] || fail "pass_fragment counted $passed after an ambiguous datagram"
echo "ok 3 - a second UDP VIP on the address: $passed fragments passed to the kernel"

# --- 4. the backends' decap counters ------------------------------------------------------
decap_count() {  # backend, counter -> its packets on the XDP hook
  inns rg$id$1 "$ringlb" decap stats eth0 | awk -v k="decap.xdp.$2.packets" '$1 == k {print $2}'
}
decapsulated=0
for b in "${backends[@]}"; do
  decapsulated=$((decapsulated + $(decap_count "$b" decap)))
done
[[ $decapsulated -ge $((4 * ${#clients[@]})) ]] ||
  fail "the backends decapsulated $decapsulated packets, want at least $((4 * ${#clients[@]}))"
dropped_before=$(decap_count b1 drop_source)
sent=$(inns $ns_c python3 "$here/udp_tools.py" tunnel 10.87.0.21 10.87.0.100 10.88.0.10 5353 5)
[[ $sent == 5 ]] || fail "the spoofing client sent '$sent' tunnel packets"
for _ in $(seq 1 20); do
  dropped=$(($(decap_count b1 drop_source) - dropped_before))
  [[ $dropped -ge 5 ]] && break
  sleep 0.1
done
[[ $dropped == 5 ]] || fail "b1 counted $dropped of 5 tunnel packets from the client as drop_source"
if inns $ns_c "$ringlb" decap stats eth0 >/dev/null 2>"$tmp/err"; then
  fail "decap stats on an interface without the decap program succeeded"
fi
grep -q "no ringlb decap program on eth0" "$tmp/err" || fail "decap stats without it said: $(cat "$tmp/err")"
echo "ok 4 - the backends decapsulated $decapsulated packets; b1 dropped the 5 tunnel packets" \
  "of a host that is not the balancer (drop_source)"

inns $ns_l "$ringlb" detach eth0 --pin-path "$pin" --unpin >/dev/null || fail "ringlb detach"
echo "PASS"
