#!/usr/bin/env bash
# `promtool check metrics` (Debian package prometheus) on what ringlbd serves at /metrics
# after traffic (every histogram bucket and counter family present): no format error
# and no lint problem (names, units, _total suffixes, help texts).
set -uo pipefail
ringlbd=$1
source "$(dirname "$0")/lib.sh"
need_root_and_fuse
command -v promtool >/dev/null || skip "no promtool (Debian package prometheus; tools/setup.sh installs it)"

serve_metrics "$ringlbd"
send_traffic "$vip_port" 10
scrape "http://127.0.0.1:$metrics_port/metrics" >"$dir/metrics.txt"
(($(metric ringlb_worker_accepted_total <"$dir/metrics.txt") == 10)) || fail "no traffic counted"

promtool check metrics <"$dir/metrics.txt" >"$dir/promtool.out" 2>&1
rc=$?
if ((rc != 0)) || [[ -s $dir/promtool.out ]]; then
  cat "$dir/promtool.out" >&2
  fail "promtool check metrics: exit $rc"
fi
echo "promtool check metrics: no problem in $(grep -c '^# TYPE' "$dir/metrics.txt") families," \
  "$(grep -vc '^#' "$dir/metrics.txt") samples"
