#!/usr/bin/env bash
# End-to-end comparison: direct vs HAProxy vs nginx stream vs ringlbd, on loopback.
#
#   perf/e2e/compare.sh                      # 3 interleaved rounds, 5 s runs (~5 min)
#   perf/e2e/compare.sh --quick              # smoke run: 1 round, 1 s runs, 1000 idle conns
#   perf/e2e/compare.sh --targets direct,haproxy,nginx --rounds 5 --duration 10 --out DIR
#
# Prints one table (medians, ratio ringlbd / HAProxy), writes OUT/latest.md (default
# perf/e2e/results/, git-ignored), OUT/results.json and the chart (perf/e2e/chart.png;
# OUT/chart.png with --quick). Details: perf/e2e/README.md.
#
# Every process the run starts gets its own process group and is recorded (pid and
# start time) in a pid file; this script kills those groups on exit, failure or
# Ctrl-C, by id only.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3                    # Debian's python: it has python3-matplotlib
[ -x "$py" ] || py=python3

for tool in wrk iperf3 haproxy nginx taskset curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "compare.sh: '$tool' not found (tools/setup.sh installs it)" >&2
    exit 2
  fi
done
if [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
  echo "compare.sh: nginx stream module missing (apt-get install libnginx-mod-stream)" >&2
  exit 2
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "compare.sh: needs 2 CPUs (balancer on CPU 0, clients on CPU 1)" >&2
  exit 2
fi

# 10k idle client connections + the balancer's 20k descriptors; children inherit this.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"   # no CAP_SYS_RESOURCE: the hard limit

state=$(mktemp -d /tmp/ringlb-e2e.XXXXXX)
pypid=

kill_recorded() {
  # pid file lines: "pid starttime name"; kill a group only while its leader is the
  # process we started (same start time), so a recycled pid is never touched.
  [ -f "$state/pids" ] || return 0
  local pid st name cur
  while read -r pid st name; do
    cur=$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$pid/stat" 2>/dev/null) || continue
    if [ -n "$cur" ] && [ "$cur" = "$st" ]; then
      kill -TERM -- "-$pid" 2>/dev/null
      sleep 0.5
      kill -KILL -- "-$pid" 2>/dev/null
    fi
  done < "$state/pids"
}

cleanup() {
  if [ -n "$pypid" ] && kill -0 "$pypid" 2>/dev/null; then
    kill -TERM "$pypid" 2>/dev/null
    wait "$pypid" 2>/dev/null
  fi
  kill_recorded
  # ringlbd mounts its control filesystem (FUSE) under $state; a killed daemon leaves
  # the mount behind. Detach it, and never let rm cross into a mounted filesystem.
  local m
  awk -v s="$state/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  rm -rf --one-file-system "$state"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# In the background so that a signal to this script runs the trap at once.
"$py" "$here/compare.py" --state-dir "$state" "$@" &
pypid=$!
wait "$pypid"
rc=$?
pypid=
exit "$rc"
