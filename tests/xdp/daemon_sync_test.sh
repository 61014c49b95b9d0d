#!/usr/bin/env bash
# ringlbd keeps the pinned XDP tables in step (label integration, needs root).
#
# ringlbd runs with an [xdp] config whose forward VIP web has b1, b2, its control
# filesystem and a private bpffs pin path. Checks:
#   1. started before any program is attached, it serves and says once that forward VIPs
#      have no XDP data plane;
#   2. once `ringlb attach` has pinned the maps (in a namespace), a control write of b1's
#      weight (vips/web/backends/b1/weight) changes the pinned Maglev table: `ringlb xdp
#      list`, xdp/vips/.../slots and `ringlb which --pin-path` agree with `ringlb which -c`
#      on the re-weighted config;
#   3. state down (through xdp/vips/...) takes b2 out of the table;
#   4. bad writes fail (Invalid argument, Permission denied) and leave `ringlb xdp list`
#      byte-identical;
#   5. mkdir + address adds backend b4 to the pinned table, rmdir removes it;
#   6. a reload (SIGHUP) that adds b3 puts b3 in the pinned table.
# Everything (namespace, mounts, processes, pins) is removed on exit, also on failure.
#
# Usage: daemon_sync_test.sh RINGLB RINGLBD
# Exit 77: skipped (not root, or a missing tool).
set -euo pipefail

ringlb=$1
ringlbd=$2
ns=rxd$$
tmp=$(mktemp -d /tmp/ringlb-dsync.XXXXXX)
pins=$tmp/bpffs
pin=$pins/ringlb
ctl=$tmp/ctl
source "$(dirname "$0")/lib.sh"
umask 077  # the config holds hash_seed: ringlbd wants it private
fail_log=$tmp/ringlbd.log

need_root "XDP, bpffs, FUSE" ip mount fusermount3
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

ip netns add $ns
inns $ns ip link add v0 type veth peer name v1
inns $ns ip addr add 10.81.0.2/24 dev v0
inns $ns ip link set v0 up
inns $ns ip link set v1 up
mkdir -p "$pins" "$ctl"
mount -t bpf bpf "$pins"

write_config() {  # file, then "name address weight" per backend
  local file=$1
  shift
  cat >"$file" <<EOF
[daemon]
hash_seed = "fedcba9876543210fedcba9876543210"
drain_timeout_ms = 2000
[xdp]
interface = "v0"
attach = "generic"
steer = false
[[vip]]
name = "web"
listen = "10.82.0.10:80"
mode = "forward"
EOF
  for b in "$@"; do
    read -r name address weight <<<"$b"
    printf '[[vip.backend]]\nname = "%s"\naddress = "%s"\nweight = %s\n' "$name" "$address" "$weight" >>"$file"
  done
}
write_config "$tmp/ringlb.toml" "b1 10.81.0.21 1" "b2 10.81.0.22 1"
write_config "$tmp/b1w4.toml" "b1 10.81.0.21 4" "b2 10.81.0.22 1"
write_config "$tmp/b2down.toml" "b1 10.81.0.21 4" "b2 10.81.0.22 0"
write_config "$tmp/grown.toml" "b1 10.81.0.21 1" "b2 10.81.0.22 1" "b3 10.81.0.23 1"

# --- 1. no program yet --------------------------------------------------------------------
"$ringlbd" --config "$tmp/ringlb.toml" --control-dir "$ctl" --pin-path "$pin" --workers 1 \
  --no-pin >"$tmp/ringlbd.log" 2>&1 &
ringlbd_pid=$!
pids+=($ringlbd_pid)
for _ in $(seq 200); do
  grep -q "ringlbd: serving" "$tmp/ringlbd.log" && grep -q " $ctl " /proc/mounts && break
  kill -0 $ringlbd_pid 2>/dev/null || fail "ringlbd exited"
  sleep 0.05
done
grep -q " $ctl " /proc/mounts || fail "ringlbd did not start"
[[ $(grep -c "forward VIPs have no XDP data plane" "$tmp/ringlbd.log") == 1 ]] ||
  fail "ringlbd did not say once that forward VIPs have no data plane"
[[ -z $(ls "$ctl/xdp/vips") ]] || fail "xdp/vips lists VIPs without a program"
echo "ok 1 - without a program ringlbd serves and says once that forward VIPs have no data plane"

# --- 2. a control write re-weights the pinned table ------------------------------------------
ip netns exec $ns "$ringlb" attach v0 -c "$tmp/ringlb.toml" --mode generic --pin-path "$pin" \
  >/dev/null || fail "ringlb attach"
slots() { "$ringlb" xdp list --pin-path "$pin" | awk -v b="$1" '$1 == "backend" && $2 == b {print $NF}'; }
before=$(slots b1)
[[ $(ls "$ctl/vips") == web ]] || fail "vips/ does not list forward VIP web"
[[ $(cat "$ctl/vips/web/mode") == forward ]] || fail "vips/web/mode is not forward"
echo 4 >"$ctl/vips/web/backends/b1/weight" || fail "write b1 weight 4"
grep -q "XDP maps under $pin follow the config's forward VIPs" "$tmp/ringlbd.log" ||
  fail "ringlbd did not report the maps it follows"
after=$(slots b1)
[[ $after -gt $before ]] || fail "b1 owns $after slots after weight 4, $before before"
[[ $(cat "$ctl/xdp/vips/web/backends/b1/weight") == 4 ]] || fail "xdp/.../b1/weight is not 4"
[[ $(cat "$ctl/xdp/vips/web/backends/b1/slots") == "$after" ]] || fail "xdp/.../b1/slots disagrees with list"
agree() {  # config the pinned table must equal
  for i in $(seq 1 40); do
    local client=10.81.1.$i a b
    a=$("$ringlb" which --pin-path "$pin" --vip web $client | awk '{print $2}')
    b=$("$ringlb" which -c "$1" --vip web $client | awk '{print $2}')
    [[ -n $a && $a == "$b" ]] || fail "client $client: pinned table names '$a', $1 gives '$b'"
  done
}
agree "$tmp/b1w4.toml"
echo "ok 2 - echo 4 > vips/web/backends/b1/weight: b1 went from $before to $after slots; which agrees"

# --- 3. state down ---------------------------------------------------------------------------
echo down >"$ctl/xdp/vips/web/backends/b2/state" || fail "write b2 state down"
[[ $(slots b2) == 0 ]] || fail "b2 still owns $(slots b2) slots when down"
[[ $(cat "$ctl/xdp/vips/web/backends/b2/state") == down ]] || fail "b2 state does not read down"
agree "$tmp/b2down.toml"
echo "ok 3 - state down took b2 out of the pinned table"

# --- 4. a bad write changes nothing -----------------------------------------------------------
list_before=$("$ringlb" xdp list --pin-path "$pin")
if err=$(echo 20000 2>&1 >"$ctl/xdp/vips/web/backends/b1/weight"); then
  fail "weight 20000 was accepted"
fi
[[ $err == *"Invalid argument"* ]] || fail "weight 20000: '$err', want Invalid argument"
if echo 5 2>/dev/null >"$ctl/xdp/vips/web/backends/b1/slots"; then
  fail "slots is writable"
fi
if err=$(echo 10.81.0.29:80 2>&1 >"$ctl/vips/web/backends/b1/address"); then
  fail "a forward backend took an address with a port"
fi
[[ $err == *"Invalid argument"* ]] || fail "address with port: '$err', want Invalid argument"
[[ $("$ringlb" xdp list --pin-path "$pin") == "$list_before" ]] || fail "a refused write changed the maps"
echo "ok 4 - refused writes (weight 20000, read-only slots, address with port) left the maps byte-identical"

# --- 5. mkdir and rmdir ---------------------------------------------------------------------
mkdir "$ctl/vips/web/backends/b4" || fail "mkdir b4"
[[ -z $(slots b4) ]] || fail "a pending backend is in the maps"
echo 10.81.0.24 >"$ctl/vips/web/backends/b4/address" || fail "write b4 address"
[[ $(slots b4) -gt 0 ]] || fail "b4 owns no slot after its address was written"
[[ $(cat "$ctl/xdp/vips/web/backends/b4/address") == 10.81.0.24 ]] || fail "xdp/ does not show b4"
rmdir "$ctl/vips/web/backends/b4" || fail "rmdir b4"
[[ -z $(slots b4) ]] || fail "b4 still in the maps after rmdir"
[[ $("$ringlb" xdp list --pin-path "$pin") == "$list_before" ]] || fail "mkdir+rmdir did not restore the maps"
echo "ok 5 - mkdir + address put b4 in the pinned table, rmdir took it out"

# --- 6. reload ---------------------------------------------------------------------------------
cp "$tmp/grown.toml" "$tmp/ringlb.toml"
kill -HUP $ringlbd_pid
for _ in $(seq 100); do
  [[ -n $(slots b3) ]] && break
  sleep 0.05
done
[[ $(slots b3) -gt 0 ]] || fail "b3 is not in the pinned table after the reload"
agree "$tmp/grown.toml"
echo "ok 6 - a reload that adds b3 put it in the pinned table"

kill -TERM $ringlbd_pid
for _ in $(seq 100); do
  kill -0 $ringlbd_pid 2>/dev/null || break
  sleep 0.1
done
kill -0 $ringlbd_pid 2>/dev/null && fail "ringlbd still runs 10 s after SIGTERM"
wait $ringlbd_pid || fail "ringlbd exited non-zero"
pids=()
ip netns exec $ns "$ringlb" detach v0 --pin-path "$pin" --unpin >/dev/null || fail "ringlb detach"
