#!/usr/bin/env bash
# The Debian package and its unit under a real systemd (issue 18). A small Debian tree
# (debootstrap --variant=minbase from the archive this machine's apt uses, with systemd
# and the package's dependencies; cached in /var/cache/ringlb-tests between runs) boots
# with systemd-nspawn --boot, on a throwaway overlay, sharing this machine's network.
# The .deb cpack builds from this build directory is installed in it with dpkg, and then,
# as an operator would:
#   1. postinst made the user ringlb and /etc/ringlb/ringlb.toml (0600, ringlb, a seed);
#   2. `systemctl start ringlbd` returns once it is ready (Type=notify); its status names
#      what it serves;
#   3. outside the service, in the container's own mount namespace: the control tree is
#      mounted at /run/ringlb and its pid file names the MainPID, `ringlb stats` reads it;
#      traffic from this machine through the VIP; /metrics over HTTP;
#   4. the service runs as ringlb on every thread, with no_new_privs, a seccomp filter and
#      no capability beyond the unit's;
#   5. control_group: its member reads stats and cannot write a weight; nobody else reads;
#   6. `systemctl reload` applies the file, fails on a bad one (ringlbd says why in the
#      journal) and keeps serving;
#   7. past WatchdogSec it is still running, never restarted; the connection log is in the
#      journal with its fields;
#   8. `systemctl stop` drains and exits cleanly, and the mount is gone.
# Exit 77 (skip), saying why, when not root, a tool is missing (tools/setup.sh installs
# them), no archive is configured for apt, the tree cannot be built, or no container
# boots here. Everything it starts is stopped on every exit path, /dev/fuse gets its mode
# back, and the cached tree is never changed (the container writes to a tmpfs overlay).
#
# Usage: nspawn_test.sh BUILD_DIR CPACK TRAFFIC_PY
set -uo pipefail
build=$1
cpack=$2
traffic=$3

skip() {
  echo "SKIP: $*"
  exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root (containers, /dev/fuse)"
for tool in systemd-nspawn debootstrap nsenter capsh dpkg-deb python3 curl "$cpack"; do
  command -v "$tool" >/dev/null || skip "no $tool (tools/setup.sh installs it)"
done
[[ -c /dev/fuse ]] || skip "no /dev/fuse"

dir=$(mktemp -d /tmp/ringlb-nspawn.XXXXXX)
machine=ringlbtest-$$
nspawn_pid=
init=
backend_pid=
fuse_mode=
cleanup() {
  local status=$?
  if [[ -n $init ]] && kill -0 "$init" 2>/dev/null; then
    nsenter --target "$init" --mount --uts --ipc --pid -- systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 100); do kill -0 "$init" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$init" 2>/dev/null || true
  fi
  if [[ -n $nspawn_pid ]]; then
    for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  if [[ -n $backend_pid ]]; then
    kill "$backend_pid" 2>/dev/null
    wait "$backend_pid" 2>/dev/null || true
  fi
  [[ -n $fuse_mode ]] && chmod "$fuse_mode" /dev/fuse
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
fail() {
  echo "FAIL: $*" >&2
  if [[ -n $init ]]; then
    echo "--- journal of ringlbd.service:" >&2
    in_ct journalctl -u ringlbd --no-pager -n 40 >&2 2>/dev/null
  fi
  exit 1
}
in_ct() { nsenter --target "$init" --mount --uts --ipc --pid -- "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The package, built from this build directory.
"$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$dir/pkg" >"$dir/cpack.log" 2>&1 ||
  { cat "$dir/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(ls "$dir"/pkg/ringlb_*.deb 2>/dev/null | head -1)
[[ -n $deb ]] || fail "cpack made no .deb"
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$' | sort -u | paste -sd,)

# The archive apt uses here (deb822 .sources or one-line sources.list), for this release.
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
mirror=$(python3 - "$codename" <<'PY'
import glob, re, sys
codename = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and codename in fields.get("suites", []) \
                and fields.get("enabled", ["yes"])[0] != "no" and fields.get("uris"):
            print(fields["uris"][0]); sys.exit(0)
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == codename:
            print(words[1]); sys.exit(0)
PY
)
[[ -n $mirror ]] || skip "apt has no archive for $codename to build the container from"

# The tree: cached by release and package list; built once (about 1-2 minutes).
includes="systemd,systemd-sysv,dbus,$depends"
key=$(echo "$codename $includes" | sha256sum | cut -c1-16)
cache=/var/cache/ringlb-tests
tree=$cache/nspawn-$codename-$key
mkdir -p "$cache"
rm -rf "$cache"/*.partial.*  # a run killed while building
if [[ ! -f $tree/.ringlb-complete ]]; then
  rm -rf "$tree"
  start=$(date +%s)
  partial=$tree.partial.$$
  if ! debootstrap --variant=minbase --include="$includes" "$codename" "$partial" "$mirror" \
    >"$dir/debootstrap.log" 2>&1; then
    tail -5 "$dir/debootstrap.log"
    rm -rf "$partial"
    skip "debootstrap of $codename from $mirror failed (see above): no tree to boot"
  fi
  touch "$partial/.ringlb-complete"
  mv "$partial" "$tree"
  echo "# built $tree in $(($(date +%s) - start)) s (kept for the next run)"
fi

# Debian's udev rules make /dev/fuse 0666; a VM without udev may leave it 0600, which the
# service's user could not open. Debian's mode for the test's duration.
if [[ $(stat -c %a /dev/fuse) != 666 ]]; then
  fuse_mode=$(stat -c %a /dev/fuse)
  chmod 666 /dev/fuse
  echo "# /dev/fuse was $fuse_mode (no udev here): 666, as Debian's udev rules make it, until the end"
fi

# Boot. --capability=all: the container's root may hand the unit every capability it
# asks for (the unit's bounding set then narrows it, as on a host).
systemd-nspawn --boot --register=no --keep-unit --volatile=overlay --capability=all \
  --bind=/dev/fuse --bind-ro="$dir/pkg:/mnt/pkg" --machine="$machine" -D "$tree" \
  >"$dir/nspawn.log" 2>&1 </dev/null &
nspawn_pid=$!
for _ in $(seq 100); do
  init=$(pgrep -P "$nspawn_pid" -x systemd | head -1)
  [[ -n $init ]] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n $init ]] || { tail -5 "$dir/nspawn.log"; init=; skip "systemd-nspawn --boot started no systemd here (see above)"; }
# Until its manager answers (the bus socket comes up during boot), then until it has booted.
state=
for _ in $(seq 180); do
  state=$(timeout 60 nsenter --target "$init" --mount --uts --ipc --pid -- systemctl is-system-running --wait 2>&1)
  [[ $state == running || $state == degraded ]] && break
  kill -0 "$init" 2>/dev/null || break
  sleep 0.5
done
[[ $state == running || $state == degraded ]] ||
  { tail -5 "$dir/nspawn.log"; skip "the container did not finish booting: $state"; }
echo "ok 0 - booted $(in_ct systemctl --version | head -1) in a $codename container"

# 1. The package.
in_ct dpkg -i "/mnt/pkg/$(basename "$deb")" >"$dir/dpkg.log" 2>&1 || { cat "$dir/dpkg.log"; fail "dpkg -i failed"; }
uid=$(in_ct id -u ringlb) || fail "postinst made no user ringlb"
[[ $(in_ct stat -c '%a %U' /etc/ringlb/ringlb.toml) == "600 ringlb" ]] ||
  fail "/etc/ringlb/ringlb.toml is $(in_ct stat -c '%a %U' /etc/ringlb/ringlb.toml)"
seed=$(in_ct sed -n 's/^hash_seed *= *//p' /etc/ringlb/ringlb.toml)
[[ $seed =~ ^\"[0-9a-f]{32}\"$ ]] || fail "postinst wrote no seed"
echo "ok 1 - dpkg -i: user ringlb (uid $uid), /etc/ringlb/ringlb.toml 0600 with its own seed"

# 2. Configure and start, as the operator: a VIP over a backend on this machine (the
# container shares its network).
backend_port=$(free_port)
python3 "$traffic" serve alpha "$backend_port" &
backend_pid=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $backend_port), 1).close()" 2>/dev/null && break
  sleep 0.05
done
vip_port=$(free_port)
metrics_port=$(free_port)
config_with() {  # VIP_EXTRA_LINE TRAILER
  cat <<EOF
[daemon]
workers = 2
hash_seed = $seed
control_group = "ringlbmon"
metrics_listen = "127.0.0.1:$metrics_port"
access_log = "journal"
[[vip]]
name = "web"
listen = "127.0.0.1:$vip_port"
$1
[[vip.backend]]
name = "alpha"
address = "127.0.0.1:$backend_port"
$2
EOF
}
config=$(config_with "" "")
# Written through the existing file: its owner and mode stay as postinst made them.
put_config() { printf '%s\n' "$1" | in_ct sh -c 'cat >/etc/ringlb/ringlb.toml'; }
put_config "$config"
in_ct sh -c 'groupadd --system ringlbmon && useradd --system --gid ringlbmon --no-create-home ringlbmon' ||
  fail "cannot create the monitoring user"
started=$(date +%s)
in_ct systemctl start ringlbd || fail "systemctl start ringlbd failed"
[[ $(in_ct systemctl is-active ringlbd) == active ]] || fail "ringlbd is not active after start"
main=$(in_ct systemctl show -p MainPID --value ringlbd)
status=$(in_ct systemctl show -p StatusText --value ringlbd)
[[ $status == "serving 1 proxy VIPs" ]] || fail "status text '$status'"
echo "ok 2 - systemctl start returned once ready: MainPID $main, status '$status'"

# 3. Outside the service: the mount, the tree, the CLI, traffic, metrics.
in_ct grep -q " /run/ringlb fuse.ringlb " /proc/mounts || fail "the container's root namespace sees no control mount"
[[ $(in_ct cat /run/ringlb/pid) == "$main" ]] || fail "the tree's pid is $(in_ct cat /run/ringlb/pid), MainPID $main"
python3 "$traffic" send "$vip_port" 5 1000 >"$dir/traffic.out" || fail "traffic through the VIP failed"
[[ $(grep -c ' alpha$' "$dir/traffic.out") == 5 ]] || fail "not every connection reached alpha: $(cat "$dir/traffic.out")"
accepted=$(in_ct ringlb stats | awk '$1 == "proxy.accepted" { print $2 }')
[[ $accepted == 5 ]] || fail "ringlb stats says proxy.accepted $accepted, want 5"
grep -q '^ringlb_worker_accepted_total{worker="[01]"} [1-5]$' <<<"$(curl -sf "http://127.0.0.1:$metrics_port/metrics")" ||
  fail "/metrics over HTTP does not show the accepted connections"
echo "ok 3 - /run/ringlb is the service's mount (pid $main); ringlb stats: accepted 5; /metrics over HTTP"

# 4. Credentials.
for task in $(in_ct ls "/proc/$main/task"); do
  read -r _ real effective _ _ < <(in_ct grep '^Uid:' "/proc/$main/task/$task/status")
  [[ $real == "$uid" && $effective == "$uid" ]] || fail "thread $task runs as uid $real/$effective"
done
proc_field() { in_ct awk -v k="$1:" '$1 == k { print $2 }' "/proc/$main/status"; }
[[ $(proc_field NoNewPrivs) == 1 ]] || fail "no no_new_privs"
[[ $(proc_field Seccomp) == 2 ]] || fail "no seccomp filter (Seccomp $(proc_field Seccomp))"
unit_caps=$(in_ct systemctl show -p AmbientCapabilities --value ringlbd | tr 'A-Z ' 'a-z\n')
effective_caps=$(capsh --decode="$(proc_field CapEff)" | sed 's/.*=//')
for cap in ${effective_caps//,/ }; do
  grep -qx "$cap" <<<"$unit_caps" || fail "the service holds $cap, which the unit does not give"
done
echo "ok 4 - uid $uid on every thread, no_new_privs, seccomp, capabilities $effective_caps"

# 5. control_group.
grep -q '^proxy.accepted 5$' <<<"$(in_ct runuser -u ringlbmon -- cat /run/ringlb/stats)" ||
  fail "the control_group member cannot read stats"
in_ct runuser -u ringlbmon -- sh -c 'echo 7 >/run/ringlb/vips/web/backends/alpha/weight' 2>/dev/null &&
  fail "the control_group member wrote a weight"
in_ct runuser -u nobody -- cat /run/ringlb/stats >/dev/null 2>&1 && fail "nobody read stats"
echo "ok 5 - control_group: its member reads stats and cannot write a weight; nobody else reads anything"

# 6. Reload.
put_config "$(config_with "idle_timeout_ms = 45000" "")"
in_ct systemctl reload ringlbd || fail "systemctl reload failed"
[[ $(in_ct cat /run/ringlb/vips/web/idle_timeout_ms) == 45000 ]] || fail "the reload did not apply idle_timeout_ms"
put_config "$(config_with "" "this is not toml")"
in_ct systemctl reload ringlbd 2>/dev/null && fail "a reload of a broken file succeeded"
grep -q "reload failed, keeping the running config: /etc/ringlb/ringlb.toml:" <<<"$(in_ct journalctl -u ringlbd --no-pager)" ||
  fail "the journal does not say why the reload failed"
[[ $(in_ct systemctl is-active ringlbd) == active ]] || fail "a failed reload stopped the service"
python3 "$traffic" send "$vip_port" 2 100 >/dev/null || fail "no traffic after the failed reload"
put_config "$config"
in_ct systemctl reload ringlbd || fail "systemctl reload of the fixed file failed"
echo "ok 6 - systemctl reload applies the file, fails on a broken one with ringlbd's reason, keeps serving"

# 7. The watchdog (WatchdogSec=10s) and the connection log.
sleep $((started + 12 - $(date +%s) > 0 ? started + 12 - $(date +%s) : 0))
[[ $(in_ct systemctl is-active ringlbd) == active ]] || fail "not active past WatchdogSec"
[[ $(in_ct systemctl show -p NRestarts --value ringlbd) == 0 ]] || fail "restarted (watchdog?)"
[[ $(in_ct systemctl show -p MainPID --value ringlbd) == "$main" ]] || fail "MainPID changed"
grep -q "vip=web backend=alpha .* end=client_fin" <<<"$(in_ct journalctl -u ringlbd RINGLB_VIP=web --no-pager -o cat)" ||
  fail "no connection log line with its journal fields"
echo "ok 7 - past WatchdogSec still running, never restarted; the connection log is in the journal"

# 8. Stop.
in_ct systemctl stop ringlbd || fail "systemctl stop failed"
[[ $(in_ct systemctl show -p Result --value ringlbd) == success ]] ||
  fail "the service stopped with $(in_ct systemctl show -p Result --value ringlbd)"
in_ct grep -q " /run/ringlb " /proc/mounts && fail "the control mount outlived the service"
grep -q "ringlbd: drained, exiting" <<<"$(in_ct journalctl -u ringlbd --no-pager)" || fail "no drain in the journal"
echo "ok 8 - systemctl stop: drained, exited cleanly, mount gone"
