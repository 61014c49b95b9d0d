#!/usr/bin/env bash
# Real clients through ringlbd: curl and wrk against nginx backends, iperf3 bulk.
# Everything on 127.0.0.1; every process started here is killed by PID on exit.
set -uo pipefail
ringlbd=$1
for tool in nginx curl wrk iperf3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (tools/setup.sh installs it)"; exit 0; }
done

dir=$(mktemp -d /tmp/ringlb-real.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $dir/ringlbd.log ]] && cat "$dir/ringlbd.log" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Two nginx backends that name themselves in a header.
source "$(dirname "$0")/../../tools/lib/nginx_backend.sh"
declare -A backend_port
for name in n1 n2; do
  backend_port[$name]=$(free_port)
  start_nginx_backend "$dir" "$name" "${backend_port[$name]}"
done
iperf_port=$(free_port)
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 &
pids+=($!)

web_port=$(free_port)
bulk_port=$(free_port)
cat >"$dir/ringlb.toml" <<CONF
[daemon]
workers = 2
[[vip]]
name = "web"
listen = "127.0.0.1:$web_port"
policy = "round_robin"
[[vip.backend]]
name = "n1"
address = "127.0.0.1:${backend_port[n1]}"
[[vip.backend]]
name = "n2"
address = "127.0.0.1:${backend_port[n2]}"
[[vip]]
name = "bulk"
listen = "127.0.0.1:$bulk_port"
[[vip.backend]]
name = "iperf"
address = "127.0.0.1:$iperf_port"
CONF
"$ringlbd" --config "$dir/ringlb.toml" --stats-file "$dir/stats" --control-dir "$dir/control" \
  >"$dir/ringlbd.log" 2>&1 &
ringlbd_pid=$!
pids+=($ringlbd_pid)
for _ in $(seq 100); do
  grep -q "ringlbd: serving" "$dir/ringlbd.log" && curl -s -o /dev/null "http://127.0.0.1:${backend_port[n2]}/" && break
  sleep 0.05
done

# curl: 20 requests, all answered, both backends used.
for i in $(seq 20); do
  curl -s -D - "http://127.0.0.1:$web_port/" -o "$dir/body.$i" --max-time 5 | tr -d '\r' | grep '^X-Backend' >>"$dir/curl.backends" ||
    fail "curl request $i failed"
  grep -q "^hello from n[12]$" "$dir/body.$i" || fail "curl body $i: $(cat "$dir/body.$i")"
done
n1=$(grep -c 'n1' "$dir/curl.backends")
n2=$(grep -c 'n2' "$dir/curl.backends")
[[ $((n1 + n2)) == 20 && $n1 -ge 5 && $n2 -ge 5 ]] || fail "curl shares n1=$n1 n2=$n2"
echo "curl: 20/20 answered (n1=$n1, n2=$n2)"

# wrk: keep-alive load for 2 s, no errors, no non-2xx answers.
wrk -t1 -c32 -d2s "http://127.0.0.1:$web_port/" >"$dir/wrk.out" 2>&1 || fail "wrk failed: $(cat "$dir/wrk.out")"
grep -q "Socket errors" "$dir/wrk.out" && fail "wrk socket errors: $(cat "$dir/wrk.out")"
grep -q "Non-2xx" "$dir/wrk.out" && fail "wrk non-2xx answers: $(cat "$dir/wrk.out")"
requests=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
[[ ${requests:-0} -gt 100 ]] || fail "wrk made only ${requests:-0} requests"
echo "wrk: $requests requests, no errors"

# iperf3: 2 s bulk through the bulk VIP; the bytes ringlbd counted cover what iperf3 sent.
iperf3 -c 127.0.0.1 -p "$bulk_port" -t 2 -J >"$dir/iperf.json" 2>&1 || fail "iperf3 failed: $(cat "$dir/iperf.json")"
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"])' "$dir/iperf.json") ||
  fail "iperf3 output: $(cat "$dir/iperf.json")"
[[ $sent -gt 10000000 ]] || fail "iperf3 moved only $sent bytes"
kill -USR1 "$ringlbd_pid"
for _ in $(seq 100); do [[ -f $dir/stats ]] && break; sleep 0.02; done
counted=$(awk '$1 == "vip.bulk.backend.iperf.bytes_in" {print $2}' "$dir/stats")
[[ ${counted:-0} -ge $sent ]] || fail "ringlbd counted ${counted:-0} bytes in, iperf3 received $sent"
echo "iperf3: $((sent / 1000000)) MB through ringlbd (counted $counted bytes client->backend)"

kill -TERM "$ringlbd_pid"
wait "$ringlbd_pid"
rc=$?
[[ $rc == 0 ]] || fail "ringlbd exited $rc after SIGTERM"
echo "real clients: ok"
