# Helpers for the CLI tests: a temp dir, loopback backends that name themselves, a
# ringlbd with its own control filesystem. Every process started here is killed by PID
# and the mount is detached on exit, also when the test fails.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
umask 077  # configs that hold hash_seed must be private (ringlbd refuses them otherwise)
dir=$(mktemp -d /tmp/ringlb-cli.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  if grep -q " $dir/ctl " /proc/mounts; then fusermount3 -u -z "$dir/ctl" 2>/dev/null || umount -l "$dir/ctl"; fi
  rm -rf "$dir"
}
trap cleanup EXIT
# A timeout (ctest, timeout(1)) still cleans up: exit runs the EXIT trap.
trap "exit 143" TERM INT
fail() {
  echo "FAIL: $*" >&2
  [[ -f $dir/ringlbd.log ]] && sed 's/^/ringlbd: /' "$dir/ringlbd.log" >&2
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_backend NAME: a backend on a free port; sets backend_port[NAME].
declare -A backend_port
start_backend() {
  local port
  port=$(free_port)
  python3 "$here/traffic.py" serve "$1" "$port" &
  pids+=($!)
  backend_port[$1]=$port
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1).close()" 2>/dev/null && return
    sleep 0.05
  done
  fail "backend $1 did not start"
}

# start_ringlbd RINGLBD CONFIG [ARGS...]: ringlbd with its control filesystem at $dir/ctl
# (and any further arguments); returns once it serves. Sets ringlbd_pid.
start_ringlbd() {
  mkdir -p "$dir/ctl"
  "$1" --config "$2" --control-dir "$dir/ctl" "${@:3}" >"$dir/ringlbd.log" 2>&1 &
  ringlbd_pid=$!
  pids+=($ringlbd_pid)
  for _ in $(seq 200); do
    grep -q "ringlbd: serving" "$dir/ringlbd.log" && grep -q " $dir/ctl " /proc/mounts && return
    kill -0 "$ringlbd_pid" 2>/dev/null || fail "ringlbd exited"
    sleep 0.05
  done
  fail "ringlbd did not start"
}
