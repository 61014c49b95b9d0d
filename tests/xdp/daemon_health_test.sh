#!/usr/bin/env bash
# Health reaches the pinned XDP tables (label integration, needs root).
#
# ringlbd runs a forward VIP whose backends h1..h3 are loopback addresses with TCP health
# checks (at the backend's address and the VIP's port). h1 and h3 listen, h2 does not.
#   1. h2 fails its check: ringlbd's republish takes it out of the pinned Maglev table
#      (`ringlb xdp list` slots 0, the control tree says down), h1 and h3 share the table;
#   2. `ringlb xdp` (which knows no health) rewrites the table with h2 in it; ringlbd's
#      next apply, even one that changes nothing, sees another writer and takes h2 out;
#   3. h2 starts listening: it passes, and comes back into the pinned table.
# The XDP program is attached (generic) in a namespace of the test; health checks and
# next-hop probes only reach loopback. Everything is removed on exit, also on failure.
#
# Usage: daemon_health_test.sh RINGLB RINGLBD
# Exit 77: skipped (not root, or a missing tool).
set -euo pipefail

ringlb=$1
ringlbd=$2
ns=rxh$$
tmp=$(mktemp -d /tmp/ringlb-dhealth.XXXXXX)
pins=$tmp/bpffs
pin=$pins/ringlb
ctl=$tmp/ctl
source "$(dirname "$0")/lib.sh"
umask 077  # the config holds hash_seed: ringlbd wants it private
fail_log=$tmp/ringlbd.log

need_root "XDP, bpffs, FUSE" ip mount fusermount3 socat python3
[[ -e /dev/fuse ]] || skip "no /dev/fuse"

cleanup() {
  set +e
  kill_started
  grep -q " $ctl " /proc/mounts && { fusermount3 -u -z "$ctl" 2>/dev/null || umount -l "$ctl"; }
  ip netns del $ns 2>/dev/null
  mountpoint -q "$pins" && umount "$pins"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 143" TERM INT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.1.1",0)); print(s.getsockname()[1])')
listen() {  # address: a backend that accepts on the VIP's port
  socat TCP-LISTEN:$port,bind="$1",fork,reuseaddr SYSTEM:true </dev/null >/dev/null 2>&1 &
  pids+=($!)
}
listen 127.0.1.1
listen 127.0.1.3

ip netns add $ns
inns $ns ip link add v0 type veth peer name v1
inns $ns ip addr add 10.83.0.2/24 dev v0
inns $ns ip link set v0 up
inns $ns ip link set v1 up
mkdir -p "$pins" "$ctl"
mount -t bpf bpf "$pins"

cat >"$tmp/ringlb.toml" <<EOF
[daemon]
hash_seed = "aabbccddeeff00112233445566778899"
drain_timeout_ms = 2000
[xdp]
interface = "v0"
attach = "generic"
steer = false
[[vip]]
name = "web"
listen = "10.84.0.10:$port"
mode = "forward"
[vip.health]
type = "tcp"
interval_ms = 200
timeout_ms = 200
rise = 1
fall = 1
panic_threshold = 0
[[vip.backend]]
name = "h1"
address = "127.0.1.1"
[[vip.backend]]
name = "h2"
address = "127.0.1.2"
[[vip.backend]]
name = "h3"
address = "127.0.1.3"
EOF

inns $ns "$ringlb" attach v0 -c "$tmp/ringlb.toml" --mode generic --pin-path "$pin" >/dev/null ||
  fail "ringlb attach"
"$ringlbd" --config "$tmp/ringlb.toml" --control-dir "$ctl" --pin-path "$pin" --workers 1 \
  --no-pin >"$tmp/ringlbd.log" 2>&1 &
ringlbd_pid=$!
pids+=($ringlbd_pid)
for _ in $(seq 200); do
  grep -q " $ctl " /proc/mounts && break
  kill -0 $ringlbd_pid 2>/dev/null || fail "ringlbd exited"
  sleep 0.05
done
grep -q " $ctl " /proc/mounts || fail "ringlbd did not start"

slots() { "$ringlb" xdp list --pin-path "$pin" | awk -v b="$1" '$1 == "backend" && $2 == b {print $NF}'; }
wait_slots() {  # backend, test ("-eq 0" or "-gt 0"): up to 5 s
  for _ in $(seq 100); do
    # shellcheck disable=SC2086
    [ "$(slots "$1")" $2 ] && return 0
    sleep 0.05
  done
  return 1
}

# --- 1. a failing check takes h2 out of the pinned table ---------------------------------------
wait_slots h2 "-eq 0" || fail "h2 still owns $(slots h2) slots, its check failing"
[[ $(cat "$ctl/vips/web/backends/h2/health") == down ]] ||
  fail "h2's health reads '$(cat "$ctl/vips/web/backends/h2/health")', want down"
h1=$(slots h1)
h3=$(slots h3)
[[ $((h1 + h3)) == 65537 && $h1 -gt 0 && $h3 -gt 0 ]] || fail "h1 $h1 + h3 $h3 slots, want all 65537"
echo "ok 1 - h2 failed its check and left the pinned table (h1 $h1, h3 $h3 slots)"

# --- 2. ringlbd's next apply undoes a health-blind rewrite ------------------------------------
inns $ns "$ringlb" xdp backend set web h1 --weight 1 --pin-path "$pin" >/dev/null || fail "xdp backend set"
[[ $(slots h2) -gt 0 ]] || fail "ringlb xdp left h2 out: it does not know health"
echo 1 >"$ctl/vips/web/backends/h1/weight" || fail "write h1 weight 1"
[[ $(slots h2) == 0 ]] || fail "ringlbd's apply kept the health-blind table (h2 $(slots h2) slots)"
echo "ok 2 - after a health-blind ringlb xdp rewrite, ringlbd's next apply took h2 out again"

# --- 3. it comes back when it passes -------------------------------------------------------------
listen 127.0.1.2
wait_slots h2 "-gt 0" || fail "h2 did not come back into the pinned table"
echo "ok 3 - h2 passed its check and came back ($(slots h2) slots)"
