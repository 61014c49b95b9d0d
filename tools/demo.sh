#!/usr/bin/env bash
# The run command: installs what is needed, builds ringlb and runs the built-in demo:
# three local nginx backends weighted 5:3:2, ringlbd in front of them, real HTTP traffic
# through it (wrk, one new connection per request), then each backend's share and
# ringlbd's counters. Everything stays on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash tools/setup.sh
cmake -S "$root" -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target ringlbd ringlb

dir=$(mktemp -d /tmp/ringlb-demo.XXXXXX)
# The demo config holds a hash_seed, a secret: ringlbd wants its file private (0600),
# which a git checkout cannot give, so the demo runs from a private copy.
config=$dir/ringlb-demo.toml
install -m 600 tools/demo/ringlb-demo.toml "$config"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

echo
echo "== where the configured policy would send 10000 synthetic clients (ringlb simulate)"
build/tools/ringlb simulate --config "$config" --clients 10000 --vip web --policy weighted

# The backends of the demo config: alpha, bravo, charlie on 18081..18083.
source tools/lib/nginx_backend.sh
start_nginx_backend "$dir" alpha 18081
start_nginx_backend "$dir" bravo 18082
start_nginx_backend "$dir" charlie 18083

ctl=$dir/control
build/src/daemon/ringlbd --config "$config" --stats-file "$dir/stats" --control-dir "$ctl" \
  2>"$dir/ringlbd.log" &
ringlbd=$!
pids+=($ringlbd)
for _ in $(seq 100); do
  grep -q "ringlbd: serving" "$dir/ringlbd.log" && break
  sleep 0.05
done
cat "$dir/ringlbd.log"

echo
echo "== three requests through the VIP 127.0.0.1:18080"
for _ in 1 2 3; do curl -s --max-time 5 http://127.0.0.1:18080/; done

echo
echo "== wrk: 3 s of requests, each on a new connection, through ringlbd"
wrk -t1 -c16 -d3s -H 'Connection: close' http://127.0.0.1:18080/ | sed -n '1,/Transfer/p'

kill -USR1 "$ringlbd"
for _ in $(seq 100); do [[ -f $dir/stats ]] && break; sleep 0.02; done

echo
echo "== connections per backend (weights 5:3:2)"
awk '
  /^vip\.web\.backend\.[a-z]+\.connections / { split($1, k, "."); conns[k[4]] = $2; total += $2 }
  END {
    split("alpha:5 bravo:3 charlie:2", w, " ")
    printf "  %-8s %6s %12s %8s %9s\n", "backend", "weight", "connections", "share", "expected"
    for (i = 1; i <= 3; i++) {
      split(w[i], p, ":")
      printf "  %-8s %6d %12d %7.1f%% %8.1f%%\n", p[1], p[2], conns[p[1]], 100 * conns[p[1]] / total, p[2] * 10
    }
  }' "$dir/stats"

echo
echo "== ringlbd counters (worker 0; all counters: the stats file, docs/running.md lists them)"
grep -E '^worker\.0\.(accepted|active|closed|connect_refused|retries|bytes_in|bytes_out|splice_calls|pipes_created) ' "$dir/stats" | sed 's/^/  /'

if [[ -d $ctl/vips ]]; then
  echo
  echo "== the control filesystem at $ctl (as an operator uses it)"
  echo "\$ ls $ctl/vips/web/backends/alpha"
  ls "$ctl/vips/web/backends/alpha" | tr '\n' ' '
  echo
  echo "\$ cat $ctl/vips/web/backends/*/connections"
  for b in alpha bravo charlie; do printf '  %-8s %s\n' "$b" "$(cat "$ctl/vips/web/backends/$b/connections")"; done
  echo "\$ echo 0 > $ctl/vips/web/backends/alpha/weight     # take alpha out of rotation, live"
  echo 0 >"$ctl/vips/web/backends/alpha/weight"
  before=$(cat "$ctl/vips/web/backends/alpha/connections")
  for _ in $(seq 20); do curl -s --max-time 5 -o /dev/null http://127.0.0.1:18080/; done
  echo "  alpha got $(($(cat "$ctl/vips/web/backends/alpha/connections") - before)) of the next 20 connections"
  echo "\$ echo 1000000 > $ctl/vips/web/backends/alpha/weight   # a bad value changes nothing"
  (echo 1000000 >"$ctl/vips/web/backends/alpha/weight") 2>&1 | sed 's/^/  /' || true
  echo "  weight is still $(cat "$ctl/vips/web/backends/alpha/weight")"
fi

kill -TERM "$ringlbd"
wait "$ringlbd" && echo && echo "ringlbd drained and exited 0"
