#!/usr/bin/env bash
# ringlb stats against a running ringlbd on loopback:
#   - --json validates against tests/cli/stats.schema.json and its counters agree exactly
#     with the connections and bytes this test sent;
#   - --interval prints rates per second; --count repeats;
#   - bad arguments exit 2 with a message; no source at all exits 1 with a message.
set -uo pipefail
ringlb=$1
ringlbd=$2
source "$(dirname "$0")/lib.sh"
[[ $(id -u) == 0 ]] || { echo "SKIP: the control filesystem is root-only; run as root"; exit 0; }
[[ -c /dev/fuse ]] || { echo "SKIP: no /dev/fuse"; exit 0; }
schema=$here/stats.schema.json
nopin=$dir/no-pins   # XDP source absent: the proxy alone is reported

start_backend alpha
start_backend beta
port=$(free_port)
cat >"$dir/ringlb.toml" <<CONF
[daemon]
workers = 2
[[vip]]
name = "web.v1"
listen = "127.0.0.1:$port"
policy = "round_robin"
[[vip.backend]]
name = "alpha"
address = "127.0.0.1:${backend_port[alpha]}"
[[vip.backend]]
name = "beta"
address = "127.0.0.1:${backend_port[beta]}"
CONF
start_ringlbd "$ringlbd" "$dir/ringlb.toml"

# Known traffic: 40 connections, 1000 bytes each way plus the backend's name line.
connections=40
size=1000
python3 "$here/traffic.py" send "$port" $connections $size >"$dir/landed" || fail "traffic failed"
alpha=$(grep -c ' alpha$' "$dir/landed")
beta=$(grep -c ' beta$' "$dir/landed")
[[ $((alpha + beta)) == "$connections" ]] || fail "landed: $(cat "$dir/landed")"
# Counters are final once every connection is closed.
for _ in $(seq 100); do
  [[ $(awk '$1 == "proxy.active" {print $2}' "$dir/ctl/stats") == 0 ]] && break
  sleep 0.05
done

"$ringlb" stats --json --control-dir "$dir/ctl" --pin-path "$nopin" >"$dir/stats.json" ||
  fail "stats --json failed: $(cat "$dir/stats.json")"
python3 - "$schema" "$dir/stats.json" $connections $size "$alpha" "$beta" <<'PY' || fail "stats --json: $(cat "$dir/stats.json")"
import json, sys
import jsonschema
schema, path, connections, size, alpha, beta = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
doc = json.load(open(path))
jsonschema.validate(doc, json.load(open(schema)))
proxy = doc["proxy"]
assert proxy["available"] is True, proxy
assert doc["xdp"]["available"] is False and "no XDP program pinned" in doc["xdp"]["error"], doc["xdp"]
assert doc["interval_s"] is None
def expect(what, got, want):
    if got != want:
        sys.exit(f"{what}: {got}, expected {want}")
t = proxy["totals"]["counters"]
expect("proxy.accepted", t["accepted"], connections)
expect("proxy.closed", t["closed"], connections)
expect("proxy.active", t["active"], 0)
expect("proxy.bytes_in", t["bytes_in"], connections * size)
expect("proxy.bytes_out", t["bytes_out"], alpha * (size + len("alpha\n")) + beta * (size + len("beta\n")))
expect("workers", sorted(w["worker"] for w in proxy["workers"]), [0, 1])
expect("sum of worker accepted", sum(w["counters"]["accepted"] for w in proxy["workers"]), connections)
backends = {(b["vip"], b["backend"]): b["counters"] for b in proxy["backends"]}
expect("backends", sorted(backends), [("web.v1", "alpha"), ("web.v1", "beta")])
for name, n in (("alpha", alpha), ("beta", beta)):
    c = backends[("web.v1", name)]
    expect(f"{name}.connections", c["connections"], n)
    expect(f"{name}.bytes_in", c["bytes_in"], n * size)
    expect(f"{name}.bytes_out", c["bytes_out"], n * (size + len(name) + 1))
    expect(f"{name}.failures", c["failures"], 0)
for p in ("p50", "p90", "p99"):
    assert f"connect_time_us.{p}" in proxy["percentiles"]["counters"], proxy["percentiles"]
PY
echo "stats --json: schema ok; $connections connections, bytes exact (alpha=$alpha beta=$beta)"

# --interval: rates per second over a sample taken while traffic runs.
python3 "$here/traffic.py" send "$port" 200 100 >/dev/null &
traffic=$!
pids+=($traffic)
out=$("$ringlb" stats --interval 1 --control-dir "$dir/ctl" --pin-path "$nopin") || fail "stats --interval: $out"
wait "$traffic" || fail "background traffic failed"
grep -q 'RATE/s' <<<"$out" || fail "no rate column: $out"
rate=$(awk '$1 == "proxy.accepted" {print $3}' <<<"$out")
[[ -n $rate ]] && awk -v r="$rate" 'BEGIN {exit !(r > 0)}' || fail "proxy.accepted rate '$rate': $out"
grep -q '^xdp: not available: no XDP program pinned' <<<"$out" || fail "xdp absence not reported: $out"
echo "stats --interval 1: proxy.accepted at $rate/s"

# --json with --interval and --count: one valid object per line, each with rates.
"$ringlb" stats --json --interval 0.2 --count 2 --control-dir "$dir/ctl" --pin-path "$nopin" >"$dir/two.json" ||
  fail "stats --count 2 failed"
python3 - "$schema" "$dir/two.json" <<'PY' || fail "stats --count 2: $(cat "$dir/two.json")"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
assert len(lines) == 2, lines
for line in lines:
    doc = json.loads(line)
    jsonschema.validate(doc, schema)
    assert doc["interval_s"] == 0.2, doc["interval_s"]
    assert "rates" in doc["proxy"]["totals"], doc["proxy"]["totals"]
PY
echo "stats --json --count 2: two objects with rates"

# Bad usage: exit 2 and a message naming the problem.
expect_usage() {
  local err rc
  err=$("$ringlb" "$@" 2>&1); rc=$?
  [[ $rc == 2 && -n $err ]] || fail "ringlb $*: rc=$rc, $err"
}
expect_usage stats --interval -1
expect_usage stats --interval abc
expect_usage stats --count 3          # --count needs --interval
expect_usage stats --bogus
expect_usage top --iterations 0
# decap attach names whose tunnels it strips, before it loads anything.
expect_usage_saying() {  # text, args...
  local want=$1 err rc
  shift
  err=$("$ringlb" "$@" 2>&1); rc=$?
  [[ $rc == 2 && $err == *"$want"* ]] || fail "ringlb $*: rc=$rc, wanted '$want' in: $err"
}
expect_usage_saying "give --allow CIDR" decap attach lo
expect_usage_saying "exclude each other" decap attach lo --allow-any --allow 10.0.0.0/8
expect_usage_saying "host bits are set after /8" decap attach lo --allow 10.0.0.1/8
expect_usage_saying "expected an address or a prefix" decap attach lo --allow eth0
for cmd in stats top which status attach detach simulate; do
  help=$("$ringlb" $cmd --help) || fail "$cmd --help exits non-zero"
  grep -q "^Usage: .* $cmd" <<<"$help" || fail "$cmd --help"
done
echo "bad arguments: exit 2"

# Neither source: exit 1, both reasons given.
err=$("$ringlb" stats --control-dir "$dir/nothing" --pin-path "$nopin" 2>&1); rc=$?
[[ $rc == 1 && $err == *"no control filesystem mounted at $dir/nothing"* && $err == *'no XDP program pinned'* ]] ||
  fail "no source: rc=$rc $err"
echo "no source: exit 1"

# Not root: the root-only control filesystem is named as the reason.
if command -v setpriv >/dev/null; then
  err=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$ringlb" stats --control-dir "$dir/ctl" --pin-path "$nopin" 2>&1); rc=$?
  [[ $rc == 1 && $err == *'run as root'* ]] || fail "as nobody: rc=$rc $err"
  echo "not root: exit 1, says to run as root"
fi

# top: two screens with rates, busiest first, then it stops.
out=$("$ringlb" top --interval 0.2 --iterations 2 --control-dir "$dir/ctl" --pin-path "$nopin") || fail "top: $out"
[[ $(grep -c $'\e\[H\e\[2J' <<<"$out") == 2 ]] || fail "top did not redraw twice"
grep -q 'web.v1/alpha' <<<"$out" && grep -q 'web.v1/beta' <<<"$out" || fail "top shows no backends: $out"
echo "top: 2 screens"
echo "stats: ok"
