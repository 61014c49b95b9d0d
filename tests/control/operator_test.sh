#!/usr/bin/env bash
# The control filesystem as an operator uses it: ls, cat, echo, mkdir, rmdir. Checks the
# exit status and error text of every bad write, that nothing changed after one, and
# that the mount goes away even when ringlbd is killed with SIGKILL.
set -uo pipefail
ringlbd=$1
if [[ $(id -u) != 0 || ! -w /dev/fuse ]]; then echo "SKIP: needs root and /dev/fuse"; exit 0; fi

dir=$(mktemp -d /tmp/ringlb-operator.XXXXXX)
ctl=$dir/control
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  umount -l "$ctl" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $dir/log ]] && cat "$dir/log" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# expect_write FILE VALUE STATUS ERROR-TEXT: `echo VALUE > FILE` as a shell runs it.
expect_write() {
  local err rc
  err=$( (echo "$2" >"$1") 2>&1 )
  rc=$?
  [[ $rc == "$3" ]] || fail "echo $2 > $1: exit $rc, want $3 ($err)"
  [[ -z $4 || $err == *"$4"* ]] || fail "echo $2 > $1: said '$err', want '$4'"
}

b1=$(free_port); b2=$(free_port); b3=$(free_port); port=$(free_port)
for p in $b1 $b2 $b3; do
  socat -T5 TCP-LISTEN:"$p",bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo backend-$p" 2>/dev/null &
  pids+=($!)
done
cat >"$dir/ringlb.toml" <<CONF
[daemon]
workers = 1
drain_timeout_ms = 1000
[[vip]]
name = "web"
listen = "127.0.0.1:$port"
policy = "round_robin"
[[vip.backend]]
name = "one"
address = "127.0.0.1:$b1"
[[vip.backend]]
name = "two"
address = "127.0.0.1:$b2"
CONF
"$ringlbd" --config "$dir/ringlb.toml" --control-dir "$ctl" 2>"$dir/log" &
rpid=$!
pids+=($rpid)
for _ in $(seq 100); do grep -q "ringlbd: serving" "$dir/log" && break; sleep 0.05; done
grep -q "control filesystem at $ctl" "$dir/log" || fail "no control filesystem"
web=$ctl/vips/web

# The tree, and root-only permissions.
[[ $(ls "$ctl" | tr '\n' ' ') == "metrics pid reload stats stats.json vips warnings workers xdp " ]] || fail "root: $(ls "$ctl")"
[[ $(ls "$web/backends" | tr '\n' ' ') == "one two " ]] || fail "backends: $(ls "$web/backends")"
[[ $(stat -c %a "$web") == 700 ]] || fail "vip dir mode $(stat -c %a "$web")"
[[ $(stat -c %a "$web/backends/one/weight") == 600 ]] || fail "weight mode"
[[ $(stat -c %a "$web/backends/one/active") == 400 ]] || fail "active mode"
[[ $(stat -c %a "$web/backends/one/shutdown") == 200 ]] || fail "shutdown mode"
grep -q "^ringlb $ctl fuse.ringlb .*user_id=0" /proc/mounts || fail "mount options: $(grep "$ctl" /proc/mounts)"
# The kernel enforces the modes above (default_permissions); allow_other lets root in
# when ringlbd runs as its own user.
[[ $(grep "$ctl" /proc/mounts) == *default_permissions*allow_other* ]] ||
  fail "not mounted with default_permissions,allow_other: $(grep "$ctl" /proc/mounts)"
[[ $(stat -c %U "$web/backends/one/weight") == root ]] || fail "weight not root's"

# Reads.
[[ $(cat "$web/listen") == "127.0.0.1:$port" ]] || fail "listen: $(cat "$web/listen")"
[[ $(cat "$web/policy") == round_robin ]] || fail "policy"
[[ $(cat "$web/backends/one/weight") == 1 ]] || fail "weight"

# Good writes apply at once.
expect_write "$web/backends/one/weight" 5 0 ""
[[ $(cat "$web/backends/one/weight") == 5 ]] || fail "weight not applied"
expect_write "$web/policy" weighted 0 ""
[[ $(cat "$web/policy") == weighted ]] || fail "policy not applied"

# Bad writes: EINVAL, shown by the shell, nothing changed.
expect_write "$web/backends/one/weight" 10001 1 "Invalid argument"
expect_write "$web/backends/one/weight" abc 1 "Invalid argument"
expect_write "$web/backends/one/state" sideways 1 "Invalid argument"
expect_write "$web/backends/one/address" "not-an-address" 1 "Invalid argument"
expect_write "$web/policy" fastest 1 "Invalid argument"
expect_write "$web/connect_timeout_ms" 0 1 "Invalid argument"
[[ $(cat "$web/backends/one/weight") == 5 ]] || fail "weight changed by a bad write"
[[ $(cat "$web/policy") == weighted ]] || fail "policy changed by a bad write"
[[ $(cat "$web/backends/one/state") == up ]] || fail "state changed by a bad write"
# Read-only files refuse writes.
expect_write "$web/backends/one/active" 1 1 "Permission denied"
expect_write "$web/listen" 127.0.0.1:1 1 "Permission denied"
expect_write "$ctl/stats" 1 1 "Permission denied"

# Traffic follows: weights 5:1 over 12 connections gives one ten times, two twice.
for _ in $(seq 12); do socat -T2 - TCP:127.0.0.1:"$port" </dev/null; done >"$dir/replies"
[[ $(grep -c "backend-$b1" "$dir/replies") == 10 ]] || fail "weighted shares: $(sort "$dir/replies" | uniq -c)"

# configfs-style add: mkdir, then the address.
mkdir "$web/backends/three" || fail "mkdir"
[[ $(cat "$web/backends/three/health") == pending ]] || fail "pending health"
echo "127.0.0.1:$b3" >"$web/backends/three/address" || fail "address of three"
[[ $(ls "$web/backends" | tr '\n' ' ') == "one three two " ]] || fail "after mkdir: $(ls "$web/backends")"
expect_write "$web/backends/one/weight" 1 0 ""
expect_write "$web/backends/two/weight" 1 0 ""
for _ in $(seq 6); do socat -T2 - TCP:127.0.0.1:"$port" </dev/null; done >"$dir/replies"
[[ $(grep -c "backend-$b3" "$dir/replies") == 2 ]] || fail "three gets no share: $(cat "$dir/replies")"
err=$(mkdir "$web/backends/three" 2>&1) && fail "mkdir of an existing backend succeeded"
[[ $err == *"File exists"* ]] || fail "mkdir existing: $err"
err=$(mkdir "$ctl/vips/new" 2>&1) && fail "mkdir of a vip succeeded"
[[ $err == *"Operation not permitted"* ]] || fail "mkdir vip: $err"

# rmdir drains and removes; the last backend stays.
rmdir "$web/backends/three" || fail "rmdir three"
rmdir "$web/backends/two" || fail "rmdir two"
[[ $(ls "$web/backends") == one ]] || fail "after rmdir: $(ls "$web/backends")"
err=$(rmdir "$web/backends/one" 2>&1) && fail "removed the last backend"
[[ $err == *"Device or resource busy"* ]] || fail "rmdir last: $err"

# Counters.
grep -q "^worker.0.accepted [1-9]" "$ctl/stats" || fail "stats: $(head -3 "$ctl/stats")"
grep -q "^# TYPE ringlb_backend_connections_total counter" "$ctl/metrics" || fail "metrics"
[[ $(cat "$ctl/workers/0/cpu") =~ ^[0-9]+$ ]] || fail "cpu: $(cat "$ctl/workers/0/cpu")"

# SIGKILL: the guardian detaches the mount.
kill -KILL "$rpid"
wait "$rpid" 2>/dev/null
for _ in $(seq 100); do grep -q " $ctl " /proc/mounts || break; sleep 0.02; done
grep -q " $ctl " /proc/mounts && fail "mount left after SIGKILL"
ls "$ctl" >/dev/null 2>&1 || fail "control dir unusable after SIGKILL"
echo "operator: ok"
