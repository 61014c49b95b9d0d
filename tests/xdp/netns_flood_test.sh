#!/usr/bin/env bash
# A SYN flood through the XDP data plane does not break established flows (issue 16),
# with real TCP in network namespaces (label integration, needs root).
#
#   client ns (10.85.0.100-.123) ─┐
#   lb ns     (10.85.0.2)      ─┼─ bridge in a switch ns
#   b1..b4 ns (10.85.0.21-.24) ─┘
#
# Forward VIP 10.86.0.10:80 over b1..b3, a flow table of 256 entries per CPU. Steps:
#   1. 24 long-lived connections, one per client address, each answered by the backend
#      `ringlb which` names;
#   2. a flood of 4,000 SYNs from random sources (15 times the table) passes through;
#   3. the pool changes under it all: b2 leaves, b4 joins;
#   4. every connection not on b2 is still answered by its backend, although the new
#      table alone would move some of them; the flow table's counters show embryonic
#      entries evicted and no established one.
# Everything (namespaces, mounts, processes, pins) is removed on exit, also on failure.
#
# Usage: netns_flood_test.sh RINGLB_BINARY PASS_OBJECT
# Exit 77: skipped (not root, or a missing tool).
set -euo pipefail

ringlb=$1
pass_obj=$2
here=$(cd "$(dirname "$0")" && pwd)
id=$$
ns_sw=rfsw$id
ns_c=rfc$id
ns_l=rfl$id
backends=(b1 b2 b3 b4)
tmp=$(mktemp -d /tmp/ringlb-flood.XXXXXX)
pins=$tmp/bpffs
pin=$pins/ringlb
source "$here/lib.sh"

need_root "network namespaces, XDP" ip socat ethtool mount python3

cleanup() {
  set +e
  [[ -n ${fifo_fd:-} ]] && exec {fifo_fd}>&-
  kill_started
  del_namespaces $ns_c $ns_l $ns_sw "${backends[@]/#/rf$id}"
  mountpoint -q "$pins" && umount "$pins"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 143" TERM INT

# --- topology -------------------------------------------------------------------------
forward_lab_add 10.85.0 10.86.0.10 rf$id 23
clients=()
for i in $(seq 100 123); do
  clients+=(10.85.0.$i)
done

write_config() {  # file, backend numbers...
  local file=$1
  shift
  cat >"$file" <<EOF
[daemon]
hash_seed = "8899aabbccddeeff0011223344556677"
[xdp]
interface = "eth0"
steer = false
flow_entries = 256
[[vip]]
name = "web"
listen = "10.86.0.10:80"
mode = "forward"
EOF
  for i in "$@"; do
    printf '[[vip.backend]]\nname = "b%d"\naddress = "10.85.0.%d"\n' "$i" $((20 + i)) >>"$file"
  done
}
write_config "$tmp/before.toml" 1 2 3
write_config "$tmp/after.toml" 1 3 4
inns $ns_l "$ringlb" attach eth0 -c "$tmp/before.toml" --pin-path "$pin" >/dev/null ||
  fail "ringlb attach"

flow_event() {  # name -> its count in ringlb stats
  inns $ns_l "$ringlb" stats --pin-path "$pin" --control-dir "$tmp/no-daemon" |
    awk -v k="xdp.flow_table.$1" '$1 == k {print $2}'
}
wait_rounds() {  # n: until the holder has printed n rounds (60 s at most: 2 s per broken one)
  for _ in $(seq 1 600); do
    [[ $(grep -c '^done$' "$tmp/hold.out" 2>/dev/null) -ge $1 ]] && return 0
    sleep 0.1
  done
  fail "the connection holder printed no round $1: $(cat "$tmp/hold.out")"
}
for _ in $(seq 1 20); do  # the backends' listeners
  [[ -n $(inns $ns_c timeout 3 socat -t 1 - TCP:10.86.0.10:80,connect-timeout=1 <<<x 2>/dev/null) ]] &&
    break
  sleep 0.1
done

# --- 1. long-lived connections ----------------------------------------------------------
fifo=$tmp/commands
mkfifo "$fifo"
ip netns exec $ns_c python3 "$here/flood_tools.py" hold 10.86.0.10 80 "$fifo" "${clients[@]}" \
  >"$tmp/hold.out" 2>&1 &
pids+=($!)
exec {fifo_fd}>"$fifo"
wait_rounds 1
declare -A before
for c in "${clients[@]}"; do
  got=$(awk -v c="$c" '$1 == c {print $2; exit}' "$tmp/hold.out")
  want=$("$ringlb" which -c "$tmp/before.toml" --vip web "$c" | awk '{print $2}')
  [[ $got == "$want" ]] || fail "connection from $c answered by '$got', the table names '$want'"
  before[$c]=$got
done
missing=$(flow_event not_inserted)
[[ $missing == 0 ]] || fail "$missing of the 24 flows got no entry before the flood"
echo "ok 1 - 24 long-lived connections, each on the backend the table names"

# --- 2. the flood -------------------------------------------------------------------------
sent=$(inns $ns_c timeout 60 python3 "$here/flood_tools.py" syn 10.86.0.10 80 4000 16)
[[ $sent == 4000 ]] || fail "the flood generator sent '$sent' SYNs"
evicted=$(flow_event evict_embryonic)
idle=$(flow_event evict_idle)
[[ ${evicted:-0} -gt 1000 ]] || fail "the flood evicted only '${evicted}' embryonic entries"
[[ $idle == 0 ]] || fail "the flood evicted $idle established entries"
echo "ok 2 - 4000 SYNs from random sources: $evicted embryonic entries evicted, 0 established"

# --- 3 and 4. the pool changes; established flows stay --------------------------------------
inns $ns_l "$ringlb" attach eth0 -c "$tmp/after.toml" --pin-path "$pin" >/dev/null ||
  fail "ringlb attach (b2 out, b4 in)"
echo again >&"$fifo_fd"
wait_rounds 2
kept=0 on_removed=0 moved_by_table=0
for c in "${clients[@]}"; do
  now=$(awk -v c="$c" '$1 == c {n++; if (n == 2) {print $2; exit}}' "$tmp/hold.out")
  if [[ ${before[$c]} == b2 ]]; then
    on_removed=$((on_removed + 1))
    continue
  fi
  table=$("$ringlb" which -c "$tmp/after.toml" --vip web "$c" | awk '{print $2}')
  [[ $table == "${before[$c]}" ]] || moved_by_table=$((moved_by_table + 1))
  [[ $now == "${before[$c]}" ]] ||
    fail "the connection from $c was on ${before[$c]}, now answered by '$now' after the flood and the pool change"
  kept=$((kept + 1))
done
echo quit >&"$fifo_fd"
[[ $moved_by_table -gt 0 ]] ||
  fail "the new table moves none of the $kept connections: the check would prove nothing"
echo "ok 3 - after the flood and the pool change, $kept connections kept their backend" \
  "($moved_by_table of them the new table alone would have moved); $on_removed were on b2"
