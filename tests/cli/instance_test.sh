#!/usr/bin/env bash
# One ringlbd per control directory and per VIP address (issue 18):
#   1. a second ringlbd on the same control_dir refuses to start, naming the first's pid;
#      the first keeps its one mount and serves;
#   2. a second ringlbd with another control_dir but the same VIP address refuses too,
#      naming the process that listens there;
#   3. after the first is SIGKILLed (its mount dead, its lock file left), a new ringlbd
#      starts on the same control_dir and address.
# Usage: instance_test.sh RINGLBD
set -uo pipefail
ringlbd=$1
source "$(dirname "$0")/lib.sh"

start_backend alpha
port=$(free_port)
cat >"$dir/ringlb.toml" <<CONF
[daemon]
workers = 1
[[vip]]
name = "web"
listen = "127.0.0.1:$port"
[[vip.backend]]
name = "alpha"
address = "127.0.0.1:${backend_port[alpha]}"
CONF
start_ringlbd "$ringlbd" "$dir/ringlb.toml"
first=$ringlbd_pid
[[ $(cat "$dir/ctl/pid") == "$first" ]] || fail "the tree's pid file says $(cat "$dir/ctl/pid"), want $first"

rc=0
timeout 10 "$ringlbd" --config "$dir/ringlb.toml" --control-dir "$dir/ctl" >"$dir/second.log" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a second ringlbd on the same control_dir exited $rc, want 1"
grep -q "control_dir $dir/ctl is served by ringlbd pid $first" "$dir/second.log" ||
  fail "no pid named: $(cat "$dir/second.log")"
mounts=$(grep -c " $dir/ctl " /proc/mounts)
[[ $mounts == 1 ]] || fail "$mounts mounts on the control_dir"
python3 "$here/traffic.py" send "$port" 2 3 >/dev/null || fail "the first stopped serving"
echo "ok 1 - same control_dir: refused, naming pid $first; one mount, still serving"

rc=0
timeout 10 "$ringlbd" --config "$dir/ringlb.toml" --control-dir "$dir/ctl2" >"$dir/third.log" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a second ringlbd on the same VIP address exited $rc, want 1"
grep -q "vip web: 127.0.0.1:$port is already served by pid $first (ringlbd)" "$dir/third.log" ||
  fail "the listener's process not named: $(cat "$dir/third.log")"
grep -q " $dir/ctl2 " /proc/mounts && fail "the refused daemon left a mount"
echo "ok 2 - same VIP address, other control_dir: refused, naming pid $first"

kill -KILL "$first"
wait "$first" 2>/dev/null || true
start_ringlbd "$ringlbd" "$dir/ringlb.toml"
[[ $(cat "$dir/ctl/pid") == "$ringlbd_pid" ]] || fail "the new daemon's tree does not answer"
python3 "$here/traffic.py" send "$port" 2 3 >/dev/null || fail "the new daemon does not serve"
echo "ok 3 - after a SIGKILL the next ringlbd takes the control_dir and the address"
