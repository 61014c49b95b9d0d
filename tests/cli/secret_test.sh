#!/usr/bin/env bash
# hash_seed is a secret (issue 18):
#   1. a config that holds it and is open to group or others: ringlbd refuses to start,
#      says how to fix it, and does not print the seed;
#   2. private (0600): ringlbd serves, and the seed appears nowhere it exposes: any file
#      of the control tree (stats, metrics, stats.json, every setting), the log;
#   3. a reload of a config made readable again is refused; ringlbd keeps serving;
#   4. a config without a seed: a warning in the log, in the tree's `warnings` and in
#      `ringlb status`;
#   5. `ringlb seed` prints 32 hexadecimal digits, new each time.
# Usage: secret_test.sh RINGLB RINGLBD
set -uo pipefail
ringlb=$1
ringlbd=$2
source "$(dirname "$0")/lib.sh"

seed=$("$ringlb" seed)
[[ $seed =~ ^[0-9a-f]{32}$ ]] || fail "ringlb seed printed '$seed'"
[[ $("$ringlb" seed) != "$seed" ]] || fail "ringlb seed printed the same seed twice"
echo "ok 5 - ringlb seed: 32 hex digits, new each time"

start_backend alpha
port=$(free_port)
write_config() {  # write_config FILE [SEED]
  {
    echo "[daemon]"
    echo "workers = 1"
    [[ -n ${2:-} ]] && echo "hash_seed = \"$2\""
    echo "[[vip]]"
    echo "name = \"web\""
    echo "listen = \"127.0.0.1:$port\""
    echo "policy = \"ip_hash\""
    echo "[[vip.backend]]"
    echo "name = \"alpha\""
    echo "address = \"127.0.0.1:${backend_port[alpha]}\""
  } >"$1"
}

write_config "$dir/open.toml" "$seed"
chmod 644 "$dir/open.toml"
rc=0
timeout 10 "$ringlbd" --config "$dir/open.toml" --control-dir "$dir/ctl-open" >"$dir/open.log" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a world-readable seed file: ringlbd exited $rc, want 1"
grep -q "holds hash_seed, a secret, and is open to group or others (mode 0644)" "$dir/open.log" ||
  fail "no reason given: $(cat "$dir/open.log")"
grep -q "chmod 600 $dir/open.toml" "$dir/open.log" || fail "no fix given: $(cat "$dir/open.log")"
grep -q "$seed" "$dir/open.log" && fail "the refusal printed the seed"
echo "ok 1 - a seed file open to others is refused with the fix, the seed not printed"

write_config "$dir/ringlb.toml" "$seed"
chmod 600 "$dir/ringlb.toml"
start_ringlbd "$ringlbd" "$dir/ringlb.toml"
python3 "$here/traffic.py" send "$port" 3 5 >/dev/null || fail "traffic through the VIP"
found=$(grep -rl "$seed" "$dir/ctl" 2>/dev/null || true)
[[ -z $found ]] || fail "the seed is readable in the control tree: $found"
files=$(find "$dir/ctl" -type f | wc -l)
((files > 20)) || fail "only $files control files read"
grep -q "$seed" "$dir/ringlbd.log" && fail "the log holds the seed"
[[ -z $(cat "$dir/ctl/warnings") ]] || fail "warnings with a private seed: $(cat "$dir/ctl/warnings")"
status=$("$ringlb" status --control-dir "$dir/ctl" 2>&1 || true)
grep -q "$seed" <<<"$status" && fail "ringlb status shows the seed"
grep -q "daemon warning" <<<"$status" && fail "ringlb status warns with a seed set: $status"
echo "ok 2 - private seed: served; not in $files control files, the log or ringlb status"

chmod 640 "$dir/ringlb.toml"
echo 1 >"$dir/ctl/reload" 2>"$dir/reload.err" && fail "a reload of a group-readable seed file succeeded"
grep -q "holds hash_seed" "$dir/ringlbd.log" || grep -q "Invalid argument" "$dir/reload.err" ||
  fail "the refused reload said nothing"
kill -0 "$ringlbd_pid" || fail "ringlbd died on the refused reload"
python3 "$here/traffic.py" send "$port" 1 2 >/dev/null || fail "traffic after the refused reload"
echo "ok 3 - a reload of a seed file made readable is refused; ringlbd keeps serving"

write_config "$dir/ringlb.toml"  # no seed
echo 1 >"$dir/ctl/reload" || fail "reload of a config without a seed"
grep -q "hash_seed: no hash_seed in the config" "$dir/ctl/warnings" ||
  fail "no warning in the tree: $(cat "$dir/ctl/warnings")"
grep -q "warning: no hash_seed in the config" "$dir/ringlbd.log" || fail "no warning in the log"
grep -q "daemon warning: hash_seed: no hash_seed" <<<"$("$ringlb" status --control-dir "$dir/ctl" 2>&1)" ||
  fail "ringlb status does not warn"
echo "ok 4 - no seed: warned in the log, the tree's warnings and ringlb status"
