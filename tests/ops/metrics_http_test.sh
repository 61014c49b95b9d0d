#!/usr/bin/env bash
# ringlbd's /metrics over HTTP ([daemon] metrics_listen), against its control tree:
#   - GET /metrics: 200 with the Prometheus content type, the families of the control
#     filesystem's `metrics` file and, at rest, its very bytes; HEAD: no body;
#   - / and /metrics/x: 404; POST: 405 with Allow;
#   - traffic through the VIP moves the accepted, backend and byte counters by exactly it;
#   - a reload that asks for another metrics_listen is logged and changes nothing;
#   - an address already taken: another ringlbd logs why and exits 1 at start;
#   - a port below 1024 binds after the capabilities are dropped (CAP_NET_BIND_SERVICE);
#   - SIGTERM: ringlbd drains, exits 0, and the port is closed.
set -uo pipefail
ringlbd=$1
source "$(dirname "$0")/lib.sh"
need_root_and_fuse

serve_metrics "$ringlbd"
url=http://127.0.0.1:$metrics_port
grep -q "ringlbd: metrics at $url/metrics" "$dir/ringlbd.log" || fail "no 'metrics at' line"

# GET: the status, the content type, the control tree's families and bytes.
got=$(curl -sS --max-time 5 -o "$dir/http.txt" -w '%{http_code} %{content_type}' "$url/metrics") ||
  fail "GET /metrics: $got"
[[ $got == "200 text/plain; version=0.0.4; charset=utf-8" ]] || fail "GET /metrics: $got"
families() { grep '^# TYPE ' "$1" | sort; }
diff <(families "$dir/http.txt") <(families "$dir/ctl/metrics") >&2 || fail "families differ"
(($(families "$dir/http.txt" | wc -l) > 20)) || fail "few families: $(cat "$dir/http.txt")"
# At rest (no traffic, no active checks) both are the same bytes: one renderer. Three
# tries, in case a counter moved between the two reads.
same=0
for _ in 1 2 3; do
  scrape "$url/metrics" >"$dir/http.txt"
  cat "$dir/ctl/metrics" >"$dir/tree.txt"
  cmp -s "$dir/http.txt" "$dir/tree.txt" && same=1 && break
  sleep 0.2
done
((same)) || { diff "$dir/http.txt" "$dir/tree.txt" >&2; fail "the HTTP body is not the tree's metrics file"; }
echo "GET /metrics: 200, $(families "$dir/http.txt" | wc -l) families, the control tree's bytes"

# HEAD, other paths, other methods.
code() { curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' "$@"; }
[[ $(code --head "$url/metrics") == "200 0" ]] || fail "HEAD /metrics: $(code --head "$url/metrics")"
for path in / /metrics/x /metricsx /stats; do
  [[ $(code "$url$path") == "404 "* ]] || fail "GET $path: $(code "$url$path")"
done
for method in POST PUT DELETE; do
  [[ $(code -X "$method" -d x "$url/metrics") == "405 "* ]] || fail "$method: $(code -X "$method" "$url/metrics")"
done
grep -q $'^Allow: GET, HEAD\r$' <<<"$(curl -sS --max-time 5 -i -X POST -d x "$url/metrics")" || fail "405 without Allow"
echo "HEAD: 200 without body; /, /metrics/x: 404; POST, PUT, DELETE: 405"

# Traffic moves the counters by exactly what was sent.
scrape "$url/metrics" >"$dir/before.txt"
connections=20
send_traffic "$vip_port" $connections
scrape "$url/metrics" >"$dir/after.txt"
moved() {  # NAME [FILTER]: how much the counter moved
  echo $(($(metric "$@" <"$dir/after.txt") - $(metric "$@" <"$dir/before.txt")))
}
[[ $(moved ringlb_worker_accepted_total) == "$connections" ]] ||
  fail "accepted moved by $(moved ringlb_worker_accepted_total), expected $connections"
[[ $(moved ringlb_worker_client_to_backend_bytes_total) == $((connections * 100)) ]] ||
  fail "client_to_backend_bytes moved by $(moved ringlb_worker_client_to_backend_bytes_total)"
[[ $(moved ringlb_connect_time_seconds_count) == "$connections" ]] || fail "connect_time count"
[[ $(moved ringlb_connection_duration_seconds_count) == "$connections" ]] || fail "duration count"
for name in alpha beta; do
  landed=$(grep -c " $name\$" "$dir/landed")
  [[ $(moved ringlb_backend_connections_total "backend=\"$name\"") == "$landed" ]] ||
    fail "$name: connections moved by $(moved ringlb_backend_connections_total "backend=\"$name\""), $landed landed"
done
echo "traffic: accepted +$connections, bytes and backend counters exact"

# A reload cannot move the endpoint: it says so and keeps serving where it was.
other_port=$(free_port)
write_config "$dir/ringlb.toml" "$vip_port" "127.0.0.1:$other_port"
kill -HUP "$ringlbd_pid"
for _ in $(seq 100); do
  grep -q "metrics_listen changes to 127.0.0.1:$other_port only at the next start" "$dir/ringlbd.log" && break
  sleep 0.05
done
grep -q "metrics_listen changes to 127.0.0.1:$other_port only at the next start; serving 127.0.0.1:$metrics_port" \
  "$dir/ringlbd.log" || fail "reload: no line about metrics_listen"
[[ $(code "$url/metrics") == "200 "* ]] || fail "the endpoint moved on reload"
curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$other_port/metrics" && fail "the reload opened $other_port"
echo "reload with another metrics_listen: logged, still serving on $metrics_port"

# An address already taken (by the running ringlbd): another ringlbd refuses to start.
write_config "$dir/taken.toml" "$(free_port)" "127.0.0.1:$metrics_port"
"$ringlbd" --config "$dir/taken.toml" --no-control --pin-path "$dir/no-pins" >"$dir/taken.log" 2>&1 &
pids+=($!)
wait_exit $! 20
[[ $exit_code == 1 ]] || fail "second ringlbd exited $exit_code: $(cat "$dir/taken.log")"
grep -q "ringlbd: \[daemon\] metrics_listen: cannot serve metrics on 127.0.0.1:$metrics_port: Address already in use" \
  "$dir/taken.log" || fail "no reason given: $(cat "$dir/taken.log")"
echo "address in use: exit 1, '$(grep metrics_listen "$dir/taken.log")'"

# A port below 1024 after the capabilities are dropped: ringlbd keeps CAP_NET_BIND_SERVICE.
low=$(python3 -c '
import socket
for port in range(1000, 900, -1):
    try:
        s = socket.socket(); s.bind(("127.0.0.1", port)); s.close(); print(port); break
    except OSError:
        pass')
if [[ -n $low ]]; then
  write_config "$dir/low.toml" "$(free_port)" "127.0.0.1:$low"
  "$ringlbd" --config "$dir/low.toml" --no-control --pin-path "$dir/no-pins" >"$dir/low.log" 2>&1 &
  low_pid=$!
  pids+=("$low_pid")
  for _ in $(seq 200); do
    grep -q "ringlbd: serving" "$dir/low.log" && break
    kill -0 "$low_pid" 2>/dev/null || fail "ringlbd on port $low exited: $(cat "$dir/low.log")"
    sleep 0.05
  done
  grep -q "capabilities kept: .*cap_net_bind_service" "$dir/low.log" || fail "caps: $(cat "$dir/low.log")"
  [[ $(code "http://127.0.0.1:$low/metrics") == "200 "* ]] || fail "port $low: $(cat "$dir/low.log")"
  kill -TERM "$low_pid"
  wait_exit "$low_pid" 20
  [[ $exit_code == 0 ]] || fail "ringlbd on port $low exited $exit_code"
  echo "port $low (below 1024): served after the capabilities were dropped"
fi

# SIGTERM: drained, exit 0, the endpoint closed.
kill -TERM "$ringlbd_pid"
wait_exit "$ringlbd_pid" 30
[[ $exit_code == 0 ]] || fail "ringlbd exited $exit_code on SIGTERM"
curl -s --max-time 2 -o /dev/null "$url/metrics" && fail "the endpoint still answers after exit"
echo "SIGTERM: exit 0, endpoint closed"
echo "metrics over HTTP: ok"
