# Helpers of the ops tests, over tests/cli/lib.sh (a temp dir $dir, loopback backends,
# `fail`, `free_port`, and on every exit the PIDs in `pids` killed and waited for, the
# control mount detached and $dir removed).
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../cli/lib.sh"

skip() {
  echo "SKIP: $*"
  exit 77
}

need_root_and_fuse() {
  [[ $(id -u) == 0 ]] || skip "the control filesystem is root-only; run as root"
  [[ -c /dev/fuse ]] || skip "no /dev/fuse"
  command -v curl >/dev/null || skip "no curl (tools/setup.sh installs it)"
}

# write_config FILE VIP_PORT METRICS_LISTEN: a proxy VIP over backends alpha and beta
# (start_backend them first).
write_config() {
  cat >"$1" <<CONF
[daemon]
workers = 2
metrics_listen = "$3"
[[vip]]
name = "web"
listen = "127.0.0.1:$2"
[[vip.backend]]
name = "alpha"
address = "127.0.0.1:${backend_port[alpha]}"
[[vip.backend]]
name = "beta"
address = "127.0.0.1:${backend_port[beta]}"
CONF
}

# start_ringlbd_metrics RINGLBD CONFIG: ringlbd with its control filesystem at $dir/ctl
# and no XDP counters (an empty pin path); returns once it serves. Sets ringlbd_pid.
start_ringlbd_metrics() {
  start_ringlbd "$1" "$2" --pin-path "$dir/no-pins"
}

# serve_metrics RINGLBD: backends alpha and beta, ringlbd with a VIP on $vip_port over
# them and /metrics on 127.0.0.1:$metrics_port (both set here); returns once it serves.
serve_metrics() {
  start_backend alpha
  start_backend beta
  vip_port=$(free_port)
  metrics_port=$(free_port)
  write_config "$dir/ringlb.toml" "$vip_port" "127.0.0.1:$metrics_port"
  start_ringlbd_metrics "$1" "$dir/ringlb.toml"
}

# wait_exit PID SECONDS: waits for PID (a child) to exit; sets exit_code, or fails.
wait_exit() {
  for _ in $(seq $(($2 * 20))); do
    if ! kill -0 "$1" 2>/dev/null; then
      wait "$1"
      exit_code=$?
      return
    fi
    sleep 0.05
  done
  fail "process $1 still running after $2 s"
}

# metric NAME [FILTER] < exposition: the sum of NAME's samples whose labels contain
# FILTER (e.g. 'backend="alpha"').
metric() {
  awk -v name="$1" -v filter="${2:-}" \
    '{split($1, p, "{")} p[1] == name && index($1, filter) {sum += $2} END {printf "%d\n", sum}'
}

# scrape URL: GET it, or fail.
scrape() {
  curl -sS --max-time 5 "$1" || fail "GET $1"
}

# send_traffic VIP_PORT N: N connections of 100 bytes each way through the VIP, then
# waits until ringlbd has closed them all (its counters are final then).
send_traffic() {
  python3 "$here/traffic.py" send "$1" "$2" 100 >"$dir/landed" || fail "traffic failed"
  for _ in $(seq 100); do
    [[ $(metric ringlb_worker_active <"$dir/ctl/metrics") == 0 ]] && return
    sleep 0.05
  done
  fail "connections still active after traffic"
}
