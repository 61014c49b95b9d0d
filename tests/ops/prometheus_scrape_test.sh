#!/usr/bin/env bash
# A real Prometheus (Debian package prometheus) scrapes ringlbd's /metrics every second,
# its TSDB in the test's temp dir and its web on a free loopback port; after traffic, the
# query API (/api/v1/query) answers ringlb's accepted counter with the value ringlbd
# serves, `up` is 1, and histogram_quantile over the connect-time buckets evaluates.
# Waits are bounded (20 s); both processes are killed by PID on every exit (lib.sh).
set -uo pipefail
ringlbd=$1
source "$(dirname "$0")/lib.sh"
need_root_and_fuse
command -v prometheus >/dev/null || skip "no prometheus (Debian package prometheus; tools/setup.sh installs it)"

serve_metrics "$ringlbd"
send_traffic "$vip_port" 25
served=$(scrape "http://127.0.0.1:$metrics_port/metrics" | metric ringlb_worker_accepted_total)
((served == 25)) || fail "ringlbd serves accepted = $served after 25 connections"

prom_port=$(free_port)
cat >"$dir/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: ringlb
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
CONF
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$dir/prometheus.log" 2>&1 &
prom_pid=$!
pids+=("$prom_pid")
prom_fail() {
  sed 's/^/prometheus: /' "$dir/prometheus.log" | tail -30 >&2
  fail "$@"
}

# query PROMQL: the first result's value, "none" when the result is empty.
query() {
  curl -sS --max-time 5 --get --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" |
    python3 -c '
import json, sys
answer = json.load(sys.stdin)
assert answer["status"] == "success", answer
result = answer["data"]["result"]
print(result[0]["value"][1] if result else "none")'
}

ready=0
for _ in $(seq 200); do
  curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$prom_port/-/ready" && ready=1 && break
  kill -0 "$prom_pid" 2>/dev/null || prom_fail "prometheus exited"
  sleep 0.1
done
((ready)) || prom_fail "prometheus not ready after 20 s"

got=none
for _ in $(seq 40); do
  got=$(query 'sum(ringlb_worker_accepted_total{job="ringlb"})') || prom_fail "query failed"
  [[ $got == "$served" ]] && break
  sleep 0.5
done
[[ $got == "$served" ]] || prom_fail "Prometheus answers accepted = $got, ringlbd serves $served"
[[ $(query 'up{job="ringlb"}') == 1 ]] || prom_fail "up is not 1"
quantile=$(query 'histogram_quantile(0.99, sum by (le) (ringlb_connect_time_seconds_bucket))') ||
  prom_fail "histogram_quantile failed"
[[ $quantile != none ]] && python3 -c "import sys; v = float(sys.argv[1]); assert 0 <= v < 10, v" "$quantile" ||
  prom_fail "connect-time p99 is '$quantile'"
echo "prometheus: sum(ringlb_worker_accepted_total) = $got as served, up = 1," \
  "connect-time p99 <= $(printf %.6f "$quantile") s"
