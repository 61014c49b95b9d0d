#!/usr/bin/env bash
# `ringlb attach --owner`: the XDP data plane's pinned maps given to the user ringlbd runs
# as (the packaged unit's `ringlb`), which then keeps them in step without root
# (label integration, needs root). A test user stands in for ringlb; the pins live on a
# private bpffs mount whose root is 0700, as systemd mounts /sys/fs/bpf.
#   1. --owner with the pin path below a directory the user cannot search: refused before
#      anything is loaded, naming that directory and the fix; nothing pinned or attached;
#   2. pins made without --owner (root's): ringlbd as the user serves, and says it cannot
#      open them and how to fix that;
#   3. --owner after `chmod o+x` of the bpffs root: the pin directory and every map are
#      the user's (0700, 0600), and ringlbd as the user, with the unit's XDP capabilities
#      only and no control tree, writes its config's forward VIP into them: `ringlb xdp
#      list` shows the backend only its config has.
# Everything (namespace, mount, user, processes) is removed on exit, also on failure.
#
# Usage: pin_owner_test.sh RINGLB RINGLBD
# Exit 77: skipped (not root, or a missing tool).
set -uo pipefail

ringlb=$1
ringlbd=$2
ns=rxo$$
user=ringlbxo
tmp=$(mktemp -d /tmp/ringlb-owner.XXXXXX)
pins=$tmp/bpffs
pin=$pins/ringlb
source "$(dirname "$0")/lib.sh"
fail_log=$tmp/ringlbd.log

need_root "XDP, bpffs, users" ip mount capsh useradd

cleanup() {
  kill_started
  ip netns del $ns 2>/dev/null
  mountpoint -q "$pins" && umount "$pins"
  userdel "$user" 2>/dev/null
  groupdel "$user" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 143" TERM INT

userdel "$user" 2>/dev/null
groupdel "$user" 2>/dev/null
groupadd --system "$user" && useradd --system --gid "$user" --no-create-home \
  --home-dir /nonexistent --shell /usr/sbin/nologin "$user" || fail "cannot create user $user"
ip netns add $ns
inns $ns ip link add v0 type veth peer name v1
inns $ns ip addr add 10.83.0.254/24 dev v0
inns $ns ip link set v0 up
inns $ns ip link set v1 up
chmod 711 "$tmp"
mkdir -p "$pins"
mount -t bpf -o mode=0700 bpf "$pins"

write_config() {  # file, then backend names (10.83.0.<n>)
  local file=$1
  shift
  cat >"$file" <<EOF
[daemon]
hash_seed = "00112233445566778899aabbccddeeff"
[xdp]
interface = "v0"
attach = "generic"
steer = false
[[vip]]
name = "web"
listen = "10.84.0.10:80"
mode = "forward"
EOF
  local n=1
  for b in "$@"; do
    printf '[[vip.backend]]\nname = "%s"\naddress = "10.83.0.%s"\n' "$b" $((n++)) >>"$file"
  done
  chown "$user:$user" "$file"
  chmod 600 "$file"
}
write_config "$tmp/attach.toml" b1 b2
write_config "$tmp/daemon.toml" b1 b2 b3
attach() { inns $ns "$ringlb" attach v0 -c "$tmp/attach.toml" --pin-path "$pin" "$@"; }
attached() { grep -q "prog/xdp" <<<"$(inns $ns ip -d link show v0)"; }

# --- 1. unreachable pin root ------------------------------------------------------------------
out=$(attach --owner "$user" 2>&1) && fail "attach --owner succeeded below a 0700 directory: $out"
grep -qF "cannot reach $pin: $pins is mode 700 and not its own; let every user pass through it (chmod o+x $pins" <<<"$out" ||
  fail "the refusal does not name the directory and the fix: $out"
[[ ! -e $pin ]] || fail "something was pinned: $(ls -A "$pin")"
attached && fail "a program was attached"
echo "ok 1 - below a directory $user cannot search, attach --owner refuses before loading anything"

# ringlbd as the user with the unit's XDP capabilities as ambient ones (what systemd gives
# it; capsh keeps them across the uid change), no others, and no control tree. CAP_BPF
# creates maps; it does not open another user's pins (file permissions do).
caps=cap_bpf,cap_net_admin,cap_perfmon
run_daemon() {
  : >"$tmp/ringlbd.log"
  capsh --caps="$caps,cap_setuid,cap_setgid,cap_setpcap+eip" --keep=1 --user="$user" \
    --caps="$caps,cap_setpcap+ep $caps+i" --addamb="$caps" -- -c 'exec "$@"' as-user \
    "$ringlbd" --config "$tmp/daemon.toml" --no-control --pin-path "$pin" --workers 1 --no-pin \
    >"$tmp/ringlbd.log" 2>&1 &
  daemon=$!
  pids+=($daemon)
  for _ in $(seq 200); do
    grep -q "ringlbd: serving" "$tmp/ringlbd.log" && return
    kill -0 $daemon 2>/dev/null || fail "ringlbd as $user exited"
    sleep 0.05
  done
  fail "ringlbd as $user did not start"
}
stop_daemon() {
  kill $daemon
  wait $daemon 2>/dev/null
}

# --- 2. root's pins ------------------------------------------------------------------------------
chmod o+x "$pins"
attach >/dev/null || fail "ringlb attach"
run_daemon
grep -qF "forward VIPs have no XDP data plane: Failed to open pinned map $pin/" "$tmp/ringlbd.log" ||
  fail "ringlbd as $user did not say it cannot open root's pins"
grep -qF "(pinned for another user: \`ringlb attach --owner $user\` gives them to this one)" "$tmp/ringlbd.log" ||
  fail "ringlbd did not say how to fix it"
grep -q "backend b3" <<<"$("$ringlb" xdp list --pin-path "$pin")" && fail "b3 is in the maps without ringlbd writing them"
stop_daemon
echo "ok 2 - with root's pins, ringlbd as $user serves and says how to give it the maps"

# --- 3. --owner ------------------------------------------------------------------------------------
out=$(attach --owner "$user" 2>&1) || fail "attach --owner: $out"
grep -qF "maps pinned under $pin for $user" <<<"$out" || fail "attach did not say whose the pins are: $out"
[[ $(stat -c '%U:%G %a' "$pin") == "$user:$user 700" ]] || fail "$pin is $(stat -c '%U:%G %a' "$pin")"
for map in "$pin"/*; do
  [[ $(stat -c '%U %a' "$map") == "$user 600" ]] || fail "$map is $(stat -c '%U %a' "$map")"
done
run_daemon
read -r _ real effective _ < <(grep '^Uid:' /proc/$daemon/status)
[[ $real == "$(id -u "$user")" && $effective == "$real" ]] || fail "ringlbd runs as uid $real/$effective"
for _ in $(seq 100); do
  grep -q "XDP maps under $pin follow the config's forward VIPs" "$tmp/ringlbd.log" && break
  sleep 0.05
done
grep -q "XDP maps under $pin follow the config's forward VIPs" "$tmp/ringlbd.log" ||
  fail "ringlbd as $user did not take the maps"
grep -q "backend b3" <<<"$("$ringlb" xdp list --pin-path "$pin")" ||
  fail "b3, only in ringlbd's config, is not in the pinned maps: $("$ringlb" xdp list --pin-path "$pin")"
stop_daemon
echo "ok 3 - attach --owner $user: pins $user's (0700/0600); ringlbd as $user ($caps) writes its forward VIP to them"
