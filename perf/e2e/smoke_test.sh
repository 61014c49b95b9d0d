#!/usr/bin/env bash
# Smoke test of the end-to-end comparison: a --quick run (1 round, 1 s runs, 1000 idle
# connections, about 25 s) of direct, HAProxy, nginx and, when it is built, ringlbd;
# then checks that every target has a number in every row it should have.
# Exit 0 pass, 1 fail, 77 skip (a tool is missing or not root: ctest SKIP_RETURN_CODE).
# Results go to a temporary directory: the committed chart is not touched.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# the daemon: $RINGLBD, else build/src/daemon/ringlbd, else build/src/proxy/ringlbd
ringlbd=${RINGLBD:-}
if [ -z "$ringlbd" ]; then
  for ringlbd in "$repo/build/src/daemon/ringlbd" "$repo/build/src/proxy/ringlbd"; do
    [ -x "$ringlbd" ] && break
  done
fi

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (pins CPUs, opens thousands of sockets)"; exit 77
fi
for tool in wrk iperf3 haproxy nginx taskset curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || { echo "SKIP: libnginx-mod-stream missing"; exit 77; }
[ "$(nproc)" -ge 2 ] || { echo "SKIP: needs 2 CPUs"; exit 77; }

targets=direct,haproxy,nginx
[ -x "$ringlbd" ] && targets=$targets,ringlbd

out=$(mktemp -d /tmp/ringlb-e2e-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT

"$here/compare.sh" --quick --targets "$targets" --ringlbd "$ringlbd" --out "$out"
rc=$?
if [ "$rc" = 2 ]; then echo "SKIP: compare.sh could not run here"; exit 77; fi
if [ "$rc" != 0 ]; then echo "FAIL: compare.sh exited $rc"; exit 1; fi

py=/usr/bin/python3; [ -x "$py" ] || py=python3
"$py" - "$out" "$targets" <<'EOF'
import json, os, sys
out, targets = sys.argv[1], sys.argv[2].split(",")
j = json.load(open(os.path.join(out, "results.json")))
bad = []
for t in targets:
    m = j["median"].get(t) or {}
    keys = ["ka_rps", "ka_p99_ms", "cc_cps", "bulk_gbps"]
    if t != "direct":
        keys += ["cpu_us_req", "cpu_us_conn", "cpu_ms_gb", "mem_kib_10k"]
    for k in keys:
        v = m.get(k)
        if not isinstance(v, (int, float)) or v < 0 or (k != "mem_kib_10k" and v == 0):
            bad.append(f"{t}.{k}={v!r}")
md = open(os.path.join(out, "latest.md")).read()
row = next((l for l in md.splitlines() if l.startswith("| keep-alive requests/s")), "")
cells = [c.strip() for c in row.strip("|").split("|")][1:1 + len(targets)]
if len(cells) != len(targets) or not all(any(ch.isdigit() for ch in c) for c in cells):
    bad.append(f"table row without numbers: {row!r}")
if not any(l.startswith("| metric") and "ringlbd / HAProxy" in l for l in md.splitlines()):
    bad.append("table header missing")
if bad:
    print("FAIL: " + "; ".join(bad))
    sys.exit(1)
print(f"PASS: {', '.join(targets)} measured; table in latest.md")
EOF
