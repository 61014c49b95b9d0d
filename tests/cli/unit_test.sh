#!/usr/bin/env bash
# The systemd unit, run as systemd runs it (issue 18). This machine has no systemd to
# start it (PID 1 is not systemd, and no container can boot here), so the test emulates
# exactly what the unit asks for, read from the unit file itself, and checks that the
# unit asks for nothing else that would change the outcome:
#   1. the unit creates no mount namespace (none of the options that make systemd give the
#      service one), is Type=notify with a watchdog, runs as its own user;
#   2. ringlbd under the unit's User/Group (a test user stands in for `ringlb`), ambient
#      capabilities, bounding set, NoNewPrivileges and UMask (setpriv), with its runtime
#      directory as control_dir, in the host's mount namespace as the unit leaves it: the
#      host reads the control tree and `ringlb stats`; the daemon's uid on every thread,
#      its capabilities within the unit's, no_new_privs; with its credentials a root-owned
#      file cannot be written;
#   3. control_group: a member reads stats and cannot write a weight; others open nothing;
#   4. Type=notify: READY=1 only once the VIP accepts, WATCHDOG=1 every half interval,
#      STOPPING=1 at SIGTERM, then exit 0;
#   5. why no mount namespace: the same daemon under a slave mount namespace (what
#      ProtectSystem= and the like create; unshare --mount --propagation slave) serves a
#      tree the host cannot see.
# Usage: unit_test.sh RINGLB RINGLBD UNIT_FILE
set -uo pipefail
ringlb=$1
ringlbd=$2
unit=$3
source "$(dirname "$0")/lib.sh"
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (users, setpriv, mounts)"; exit 77; }
for tool in setpriv capsh unshare useradd; do
  command -v $tool >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
chmod 755 "$dir"

user=ringlbt        # stands in for the unit's User=ringlb (a real install may have that user)
monitor=ringlbtmon  # a member of control_group
extra_pids=()
unit_cleanup() {
  for pid in "${extra_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${extra_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for m in "$dir/run" "$dir/run2"; do
    grep -q " $m " /proc/mounts && umount -l "$m" 2>/dev/null || true
  done
  [[ -n ${fuse_mode:-} ]] && chmod "$fuse_mode" /dev/fuse
  userdel "$monitor" 2>/dev/null || true
  userdel "$user" 2>/dev/null || true
  groupdel "$monitor" 2>/dev/null || true
  groupdel "$user" 2>/dev/null || true
  cleanup
}
trap unit_cleanup EXIT

# 1. What the unit says.
value() { sed -n "s/^$1=//p" "$unit" | tail -1; }
[[ $(value Type) == notify ]] || fail "the unit is not Type=notify"
[[ -n $(value WatchdogSec) ]] || fail "the unit has no WatchdogSec"
[[ $(value User) == ringlb && $(value Group) == ringlb ]] || fail "the unit does not run as ringlb"
[[ $(value NoNewPrivileges) == yes ]] || fail "the unit lacks NoNewPrivileges=yes"
[[ $(value RuntimeDirectory) == ringlb ]] || fail "the unit has no RuntimeDirectory=ringlb"
for option in ProtectSystem ProtectHome PrivateTmp PrivateDevices PrivateMounts PrivateNetwork \
  PrivateUsers ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths NoExecPaths \
  ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectClock \
  ProtectProc ProcSubset ProtectHostname TemporaryFileSystem BindPaths BindReadOnlyPaths \
  RootDirectory RootImage MountFlags MountAPIVFS NetworkNamespacePath LogNamespace; do
  grep -q "^$option=" "$unit" && fail "the unit sets $option=, which gives it a mount namespace"
done
caps=$(value AmbientCapabilities)
bounding=$(value CapabilityBoundingSet)
[[ -n $caps && $caps == "$bounding" ]] || fail "ambient '$caps' and bounding '$bounding' differ"
# The unit's capabilities this machine can give at all (a sandbox may lack some in its
# own bounding set: they are named, and left out of the emulation).
bounding_here=$(capsh --print | sed -n 's/^Bounding set =//p' | tr ',' '\n')
keep=$(tr 'A-Z ' 'a-z\n' <<<"$caps" | grep -xF -f <(echo "$bounding_here") | paste -sd,)
missing=$(tr 'A-Z ' 'a-z\n' <<<"$caps" | grep -vxF -f <(echo "$bounding_here") | paste -sd, || true)
[[ -z $missing ]] || echo "# this machine cannot grant $missing: emulated without it"
others=$(grep -vxF -f <(tr ',' '\n' <<<"$keep") <<<"$bounding_here" | paste -sd,)
umask_value=$(value UMask)
echo "ok 1 - the unit: Type=notify, watchdog, User=ringlb, no mount namespace; caps $caps"

# Debian's udev rules make /dev/fuse 0666; a VM without udev may leave it 0600, which no
# unprivileged daemon could open. The test gives it Debian's mode for its duration.
if [[ $(stat -c %a /dev/fuse) != 666 ]]; then
  fuse_mode=$(stat -c %a /dev/fuse)
  chmod 666 /dev/fuse
  echo "# /dev/fuse was $fuse_mode (no udev here): 666, as Debian's udev rules make it, until the end"
fi
# Leftovers of a run killed before its cleanup (the names are this test's own).
for name in "$monitor" "$user"; do userdel "$name" 2>/dev/null || true; groupdel "$name" 2>/dev/null || true; done
groupadd --system "$user"
useradd --system --gid "$user" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
groupadd --system "$monitor"
useradd --system --gid "$monitor" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$monitor"
# The unit's credentials: User/Group (with its groups), AmbientCapabilities,
# CapabilityBoundingSet, NoNewPrivileges, UMask. capsh keeps the capabilities across the
# uid change and raises them as ambient, as systemd does; setpriv sets no_new_privs.
# It execs: run it in the background (its pid is then the daemon's) or in a subshell.
as_unit() {
  exec capsh --caps="$keep,cap_setuid,cap_setgid,cap_setpcap+eip" --keep=1 --user="$user" \
    --caps="$keep,cap_setpcap+ep $keep+i" --drop="$others" --addamb="$keep" \
    -- -c "umask $umask_value; exec setpriv --no-new-privs -- \"\$@\"" as-unit "$@"
}
start_backend alpha
port=$(free_port)
write_config() {  # FILE PORT
  cat >"$1" <<CONF
[daemon]
workers = 2
hash_seed = "$("$ringlb" seed)"
control_group = "$monitor"
[[vip]]
name = "web"
listen = "127.0.0.1:$2"
[[vip.backend]]
name = "alpha"
address = "127.0.0.1:${backend_port[alpha]}"
CONF
  chown "$user:$user" "$1"
  chmod 600 "$1"
}
write_config "$dir/ringlb.toml" "$port"
# RuntimeDirectory=ringlb with the unit's RuntimeDirectoryMode, owned by the user.
runtime_mode=$(value RuntimeDirectoryMode)
[[ -n $runtime_mode ]] || fail "the unit has no RuntimeDirectoryMode"
install -d -m "$runtime_mode" -o "$user" -g "$user" "$dir/run"

# The notification socket systemd would listen on; READY=1 is checked against the VIP.
python3 - "$dir/notify.sock" "$port" >"$dir/notify.log" 2>&1 <<'PY' &
import socket, sys, time, os
path, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.settimeout(30)
start = time.monotonic()
while time.monotonic() - start < 30:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    line = msg.replace("\n", "|")
    if "READY=1" in msg and "STATUS=" in msg:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            line += " vip=accepting"
        except OSError as e:
            line += f" vip=refused({e})"
    print(f"{time.monotonic() - start:.3f} {line}", flush=True)
    if "STOPPING=1" in msg:
        break
PY
extra_pids+=($!)
for _ in $(seq 50); do [[ -S $dir/notify.sock ]] && break; sleep 0.05; done

as_unit env NOTIFY_SOCKET="$dir/notify.sock" WATCHDOG_USEC=1000000 \
  "$ringlbd" --config "$dir/ringlb.toml" --control-dir "$dir/run" >"$dir/ringlbd.log" 2>&1 &
daemon=$!
extra_pids+=($daemon)
for _ in $(seq 200); do
  grep -q "ringlbd: serving" "$dir/ringlbd.log" && grep -q " $dir/run " /proc/mounts && break
  kill -0 $daemon 2>/dev/null || fail "ringlbd under the unit's credentials exited"
  sleep 0.05
done
grep -q " $dir/run " /proc/mounts || fail "the host does not see the control mount"
# What systemd checks before each command it runs (ExecReload=): the runtime directory's
# user, group and mode as the unit gives them, or it chowns the tree (and fails).
[[ $(stat -c '%U:%G %a' "$dir/run") == "$user:$user ${runtime_mode#0}" ]] ||
  fail "the control tree's root is $(stat -c '%U:%G %a' "$dir/run"), the unit's runtime directory $user:$user $runtime_mode"

# 2. The host's view, and the daemon's credentials.
grep -q "^proxy.accepted " "$dir/run/stats" || fail "root cannot read the control tree"
python3 "$here/traffic.py" send "$port" 2 3 >/dev/null || fail "no traffic through the VIP"
grep -q "proxy.accepted" <<<"$("$ringlb" stats --control-dir "$dir/run")" || fail "ringlb stats fails"
grep -q "daemon: control filesystem at $dir/run" <<<"$("$ringlb" status --control-dir "$dir/run")" ||
  fail "ringlb status does not see the daemon"
uid=$(id -u "$user")
for task in /proc/$daemon/task/*; do
  read -r _ real effective _ < <(grep '^Uid:' "$task/status")
  [[ $real == "$uid" && $effective == "$uid" ]] || fail "thread $task runs as uid $real/$effective"
done
[[ $(awk '/^NoNewPrivs:/ {print $2}' "/proc/$daemon/status") == 1 ]] || fail "no no_new_privs"
effective_caps=$(capsh --decode="$(awk '/^CapEff:/ {print $2}' "/proc/$daemon/status")" | sed 's/.*=//')
for cap in ${effective_caps//,/ }; do
  grep -qi "\b$cap\b" <<<"$caps" || fail "the daemon holds $cap, which the unit does not give"
done
echo root >"$dir/root-owned"
chmod 644 "$dir/root-owned"
(as_unit sh -c "echo changed >>'$dir/root-owned'") 2>/dev/null &&
  fail "with the daemon's credentials a root-owned file was written"
[[ $(cat "$dir/root-owned") == root ]] || fail "the root-owned file changed"
echo "ok 2 - uid $uid on every thread, caps within the unit's ($effective_caps), no_new_privs; the host reads the tree and ringlb stats; a root-owned file stays unwritable"

# 3. control_group.
as_monitor=(setpriv --reuid="$monitor" --regid="$monitor" --init-groups)
grep -q "^proxy.accepted " <<<"$("${as_monitor[@]}" cat "$dir/run/stats")" || fail "the group member cannot read stats"
"${as_monitor[@]}" sh -c "echo 5 >'$dir/run/vips/web/backends/alpha/weight'" 2>/dev/null &&
  fail "the group member wrote a weight"
[[ $(cat "$dir/run/vips/web/backends/alpha/weight") == 1 ]] || fail "the weight changed"
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
"${as_nobody[@]}" cat "$dir/run/stats" >/dev/null 2>&1 && fail "nobody read stats"
"${as_nobody[@]}" ls "$dir/run" >/dev/null 2>&1 && fail "nobody listed the tree"
echo "ok 3 - control_group: its member reads stats, cannot write a weight; others open nothing"

# 4. Notifications.
sleep 2.5
kill -TERM $daemon
rc=0
wait $daemon || rc=$?
[[ $rc == 0 ]] || fail "ringlbd exited $rc after SIGTERM"
for _ in $(seq 50); do grep -q "STOPPING=1" "$dir/notify.log" && break; sleep 0.1; done
grep -q "READY=1.*vip=accepting" "$dir/notify.log" || fail "READY=1 missing or early: $(cat "$dir/notify.log")"
pings=$(grep -c "WATCHDOG=1" "$dir/notify.log" || true)
((pings >= 4)) || fail "$pings watchdog pings in about 3 s at WATCHDOG_USEC=1000000: $(cat "$dir/notify.log")"
grep -q "STOPPING=1" "$dir/notify.log" || fail "no STOPPING=1"
echo "ok 4 - READY=1 once the VIP accepts, $pings watchdog pings, STOPPING=1, exit 0"

# 5. The same daemon under a slave mount namespace serves a tree the host cannot see.
port2=$(free_port)
write_config "$dir/ringlb2.toml" "$port2"
install -d -m "$runtime_mode" -o "$user" -g "$user" "$dir/run2"
export -f as_unit
export keep others user umask_value
unshare --mount --propagation slave bash -c 'as_unit "$@"' unshare "$ringlbd" \
  --config "$dir/ringlb2.toml" --control-dir "$dir/run2" >"$dir/ringlbd2.log" 2>&1 &
hidden=$!
extra_pids+=($hidden)
for _ in $(seq 200); do
  grep -q "ringlbd: serving" "$dir/ringlbd2.log" && break
  kill -0 $hidden 2>/dev/null || fail "ringlbd in a slave namespace exited: $(cat "$dir/ringlbd2.log")"
  sleep 0.05
done
grep -q "control filesystem at $dir/run2" "$dir/ringlbd2.log" || fail "it did not mount"
python3 "$here/traffic.py" send "$port2" 1 2 >/dev/null || fail "it does not serve"
grep -q " $dir/run2 " /proc/mounts && fail "the host sees the slave namespace's mount"
[[ -e $dir/run2/stats ]] && fail "the host reads the slave namespace's tree"
echo "ok 5 - under a slave mount namespace the daemon serves but the host sees no tree: why the unit has none"
