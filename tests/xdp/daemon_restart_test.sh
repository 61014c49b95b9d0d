#!/usr/bin/env bash
# ringlbd restarted and killed while XDP forward traffic flows (label integration, root).
#
#   client ns (10.83.0.100-.130) ─┐
#   lb ns     (10.83.0.2)      ─┼─ bridge in a switch ns
#   b1..b3 ns (10.83.0.21-.23) ─┘
#
# The lb runs ringlb's XDP program natively on its veth (`ringlb attach --pin-path` on a
# bpffs the test mounts), forward VIP 10.84.0.10:80 balanced over b1..b3. The backends
# decapsulate (ringlb decap), hold the VIP on lo and answer every line with their name
# (DSR). ringlbd runs in the lb's network namespace only (nsenter --net: its control mount
# is in the host's mount namespace), with the same config, the same pins, a control dir
# in a temp dir, and a proxy VIP 10.83.0.2:8080 with two local backends. Six long-running
# forward connections from six client addresses exchange a line every 50 ms throughout;
# every answer must come, within 3 s, from the backend that answered first (the one
# `ringlb which` names). The clients run under `ip netns exec`, whose private mount
# namespaces copy the control mount: ringlbd must exit on SIGTERM all the same. Checks:
#   1. SIGTERM, then a new ringlbd: the proxy VIP refuses for no longer than the restart
#      (SIGTERM to the new daemon serving, plus 0.5 s), and only during it;
#   2. no forward connection missed an answer or changed backend across that restart;
#   3. SIGKILL: forward lines keep flowing with no daemon, the control mount leaves
#      /proc/mounts within 5 s (the guardian detaches it), the attached program id, the
#      pinned maps' ids and `ringlb xdp list` are unchanged;
#   4. the next ringlbd adopts the pinned state: it serves, says it follows the pinned
#      maps, the same program id is attached (also in its xdp/program), no pinned map was
#      recreated (bpftool map ids), `ringlb xdp list` (with each backend's slots) and
#      `ringlb which --pin-path` for 31 client addresses are the same;
#   5. every forward connection still answers from its first backend; totals printed.
# Everything (namespaces, links, XDP, mounts, processes, pins) is removed on exit, also on
# failure and on SIGTERM.
#
# Usage: daemon_restart_test.sh RINGLB RINGLBD PASS_OBJECT
# Exit 77: skipped (not root, or a missing tool).
set -euo pipefail

ringlb=$1
ringlbd=$2
pass_obj=$3
id=$$
ns_sw=rrsw$id
ns_c=rrc$id
ns_l=rrl$id
backends=(b1 b2 b3)
all_ns=($ns_c $ns_l $ns_sw "${backends[@]/#/rr$id}")
vip=10.84.0.10
proxy_vip=10.83.0.2
clients=()  # the forward connections' client addresses
daemon_pid=""
source "$(dirname "$0")/lib.sh"
umask 077  # the config holds hash_seed: ringlbd wants it private

need_root "network namespaces, XDP, bpffs, FUSE" ip socat ethtool mount nsenter fusermount3 \
  bpftool timeout pgrep ps
[[ -e /dev/fuse ]] || skip "no /dev/fuse"
[[ -f $pass_obj ]] || skip "no XDP_PASS object at $pass_obj"
((BASH_VERSINFO[0] >= 5)) || skip "needs bash 5 (EPOCHREALTIME)"

tmp=$(mktemp -d /tmp/ringlb-restart.XXXXXX)
pins=$tmp/bpffs
pin=$pins/ringlb
ctl=$tmp/ctl
fail_log=$tmp/ringlbd.1.log

cleanup() {
  set +e
  touch "$tmp/stop"
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    for _ in $(seq 50); do
      kill -0 "$daemon_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  kill_started
  # Processes started inside the test's namespaces (servers, clients, a killed daemon's
  # guardian), then the namespaces with their links and XDP attachments.
  for ns in "${all_ns[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  grep -q " $ctl " /proc/mounts && { fusermount3 -u -z "$ctl" 2>/dev/null || umount -l "$ctl"; }
  for ns in "${all_ns[@]}"; do
    ip netns del "$ns" 2>/dev/null
  done
  mountpoint -q "$pins" && umount "$pins"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 143" TERM INT

now_us() { echo "${EPOCHREALTIME/./}"; }
ms() { echo $((($1) / 1000)); }  # microseconds -> milliseconds

# --- topology ------------------------------------------------------------------------------
switch_add

host $ns_c pc 10.83.0.100/24
for i in $(seq 101 130); do
  inns $ns_c ip addr add 10.83.0.$i/24 dev eth0
done
inns $ns_c ip route add $vip/32 via 10.83.0.2
# The client's TCP checksums would be left to offload and arrive unfilled after XDP_TX.
inns $ns_c ethtool -K eth0 tx off >/dev/null

host $ns_l pl 10.83.0.2/24
inns $ns_l sysctl -qw net.ipv4.ip_forward=1  # bpf_fib_lookup needs it

n=21
for b in "${backends[@]}"; do
  backend_add rr$id$b "p$b" 10.83.0.$n/24 $vip 10.83.0.2/32 "$b"
  n=$((n + 1))
done
# The proxy VIP's backends, local to the lb.
for p in 1 2; do
  ip netns exec $ns_l socat TCP-LISTEN:900$p,bind=127.0.0.1,fork,reuseaddr \
    SYSTEM:"read -r line; echo p$p" </dev/null >/dev/null 2>&1 &
  pids+=($!)
done

mkdir -p "$pins" "$ctl"
mount -t bpf bpf "$pins"
cat >"$tmp/ringlb.toml" <<EOF
[daemon]
hash_seed = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
drain_timeout_ms = 1000
[xdp]
interface = "eth0"
attach = "native"
steer = false
[[vip]]
name = "web"
listen = "$vip:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.83.0.21"
[[vip.backend]]
name = "b2"
address = "10.83.0.22"
[[vip.backend]]
name = "b3"
address = "10.83.0.23"
[[vip]]
name = "front"
listen = "$proxy_vip:8080"
mode = "proxy"
policy = "round_robin"
connect_timeout_ms = 500
[[vip.backend]]
name = "p1"
address = "127.0.0.1:9001"
[[vip.backend]]
name = "p2"
address = "127.0.0.1:9002"
EOF
inns $ns_l "$ringlb" attach eth0 -c "$tmp/ringlb.toml" --pin-path "$pin" >/dev/null ||
  fail "ringlb attach"

# --- helpers ---------------------------------------------------------------------------------
in_lb() { nsenter --net=/run/netns/$ns_l "$@"; }
prog_id() { in_lb ip -d link show eth0 | grep -o 'prog/xdp id [0-9]*' | awk '{print $3}'; }
map_ids() {  # "pin id" per pinned map
  local f
  for f in "$pin"/*; do
    printf '%s %s\n' "${f##*/}" "$(bpftool map show pinned "$f" 2>/dev/null | awk -F: 'NR == 1 {print $1}')"
  done
}
xdp_list() { "$ringlb" xdp list --pin-path "$pin"; }
which_pinned() {  # the backend the pinned table names for each of the 31 client addresses
  local i
  for i in $(seq 100 130); do
    echo "10.83.0.$i $("$ringlb" which --pin-path "$pin" --vip web 10.83.0.$i | awk '{print $2}')"
  done
}

starts=0
start_daemon() {  # sets daemon_pid, ready_us; fails unless it serves within 10 s
  starts=$((starts + 1))
  fail_log=$tmp/ringlbd.$starts.log
  nsenter --net=/run/netns/$ns_l "$ringlbd" --config "$tmp/ringlb.toml" --control-dir "$ctl" \
    --pin-path "$pin" --workers 1 --no-pin >"$fail_log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 1000); do
    if grep -q "ringlbd: serving" "$fail_log" && grep -q " $ctl " /proc/mounts &&
      [[ -n $(cat "$ctl/xdp/program" 2>/dev/null) ]]; then
      ready_us=$(now_us)
      return 0
    fi
    kill -0 $daemon_pid 2>/dev/null || fail "ringlbd (start $starts) exited"
    sleep 0.01
  done
  fail "ringlbd (start $starts) did not serve within 10 s"
}

ask_proxy() {  # one connection to the proxy VIP from the client: its answer
  inns $ns_c timeout 3 socat -t 2 -T 2 - TCP:$proxy_vip:8080,connect-timeout=1 <<<"x" 2>/dev/null |
    head -n1
}

# A long-running forward connection, k from client address c: a line every 50 ms until
# $tmp/stop exists (at most 2000 lines, 120 s). Each answer is appended to c<k>.log as
# "answer latency_us"; c<k>.err says why it stopped early, c<k>.done how it ended well.
pump() {
  local k=$1 c=$2 first="" answer i t0 t1 in out
  trap '' PIPE
  mkfifo "$tmp/c$k.in" "$tmp/c$k.out"
  ip netns exec $ns_c timeout 130 socat -t 5 - TCP:$vip:80,bind="$c",connect-timeout=3 \
    <"$tmp/c$k.in" >"$tmp/c$k.out" 2>/dev/null &
  exec {in}>"$tmp/c$k.in"
  exec {out}<"$tmp/c$k.out"
  for ((i = 1; i <= 2000 && SECONDS < 120; i++)); do
    [[ -e $tmp/stop ]] && break
    t0=$(now_us)
    if ! echo "line $i" 1>&"$in" 2>/dev/null; then
      echo "connection $k from $c: closed before line $i (first answer: ${first:-none})" >"$tmp/c$k.err"
      return 1
    fi
    read -r -t 3 answer <&"$out" || {
      local rc=$? why="the connection closed"
      ((rc <= 128)) || why="no answer within 3 s"
      echo "connection $k from $c: line $i: $why (first answer: ${first:-none})" >"$tmp/c$k.err"
      return 1
    }
    t1=$(now_us)
    [[ -n $first ]] || first=$answer
    if [[ $answer != "$first" ]]; then
      echo "connection $k from $c: line $i answered by $answer, first by $first" >"$tmp/c$k.err"
      return 1
    fi
    echo "$answer $((t1 - t0))" >>"$tmp/c$k.log"
    sleep 0.05
  done
  echo "$first $((i - 1))" >"$tmp/c$k.done"
}

check_flows() {  # what: no pump stopped early
  local k
  for k in "${!clients[@]}"; do
    [[ -e $tmp/c$k.err ]] && fail "$(<"$tmp/c$k.err") ($1)"
    kill -0 "${pump_pids[k]}" 2>/dev/null || [[ -e $tmp/c$k.done ]] ||
      fail "connection $k from ${clients[k]}: its pump stopped ($1)"
  done
  return 0
}
lines_total() { cat "$tmp"/c*.log 2>/dev/null | wc -l; }
lines_of() { [[ -e $tmp/c$1.log ]] && wc -l <"$tmp/c$1.log" || echo 0; }

expect_lines() {  # what, seconds: every connection answers at least 5 more lines within it
  local what=$1 seconds=$2 k before=() ok
  for k in "${!clients[@]}"; do before[k]=$(lines_of "$k"); done
  for _ in $(seq $((seconds * 20))); do
    check_flows "$what"
    ok=1
    for k in "${!clients[@]}"; do
      (($(lines_of "$k") >= before[k] + 5)) || ok=0
    done
    ((ok)) && return 0
    sleep 0.05
  done
  fail "not every forward connection answered 5 lines in $seconds s ($what)"
}

# --- start: ringlbd serves, the forward path works --------------------------------------------
start_daemon
grep -q "XDP maps under $pin follow the config's forward VIPs" "$fail_log" ||
  fail "ringlbd does not follow the pinned maps"
for _ in $(seq 50); do
  [[ $(ask_proxy || true) == p[12] ]] && break
  sleep 0.1
done
[[ $(ask_proxy || true) == p[12] ]] || fail "the proxy VIP does not answer"
for _ in $(seq 50); do
  [[ -n $(inns $ns_c timeout 3 socat -t 2 - TCP:$vip:80,connect-timeout=2 <<<"x" 2>/dev/null) ]] && break
  sleep 0.1
done

# Six client addresses that cover every backend (ringlb which names each one's backend).
declare -A want per_backend
for i in $(seq 100 130); do
  c=10.83.0.$i
  b=$("$ringlb" which -c "$tmp/ringlb.toml" --vip web $c | awk '{print $2}')
  [[ -n $b ]] || fail "ringlb which names no backend for $c"
  if ((${per_backend[$b]:-0} < 2)); then
    per_backend[$b]=$((${per_backend[$b]:-0} + 1))
    want[$c]=$b
    clients+=($c)
  fi
  ((${#clients[@]} < 6)) || break
done
((${#clients[@]} == 6)) || fail "31 client addresses do not give two for each of three backends"

pump_pids=()
for k in "${!clients[@]}"; do
  pump "$k" "${clients[k]}" &
  pump_pids[k]=$!
  pids+=($!)
done
expect_lines "starting" 10
for k in "${!clients[@]}"; do
  got=$(head -n1 "$tmp/c$k.log" | awk '{print $1}')
  [[ $got == "${want[${clients[k]}]}" ]] ||
    fail "connection from ${clients[k]} answered by $got, the table names ${want[${clients[k]}]}"
done
prog_before=$(prog_id)
[[ -n $prog_before ]] || fail "no XDP program attached on the lb's eth0"
maps_before=$(map_ids)
grep -q '^flows [0-9]' <<<"$maps_before" || fail "no map ids read from $pin: $maps_before"
list_before=$(xdp_list)
which_before=$(which_pinned)
[[ $(grep -c ' b[123]$' <<<"$which_before") == 31 ]] || fail "ringlb which --pin-path: $which_before"
echo "ok 0 - 6 forward connections answered by ${!per_backend[*]}; ringlbd serves (program id $prog_before)"

# --- 1, 2. SIGTERM and start again ---------------------------------------------------------------
cat >"$tmp/proxy_loop.sh" <<EOF
# Connects to the proxy VIP every 20 ms (at most 1500 times, 30 s) until \$1 exists:
# "start_us end_us ok|fail" per attempt.
deadline=\$((\${EPOCHREALTIME/./} + 30000000))
for ((i = 0; i < 1500; i++)); do
  [[ -e \$1 ]] && break
  t0=\${EPOCHREALTIME/./}
  ((t0 < deadline)) || break
  a=\$(timeout 3 socat -t 2 -T 2 - TCP:$proxy_vip:8080,connect-timeout=1 <<<"x" 2>/dev/null | head -n1)
  t1=\${EPOCHREALTIME/./}
  [[ \$a == p[12] ]] && echo "\$t0 \$t1 ok" || echo "\$t0 \$t1 fail"
  sleep 0.02
done
EOF
ip netns exec $ns_c bash "$tmp/proxy_loop.sh" "$tmp/proxy_stop" >"$tmp/proxy.log" 2>/dev/null &
proxy_pid=$!
pids+=($proxy_pid)
sleep 1
check_flows "before the restart"
lines_at_term=$(lines_total)
term_us=$(now_us)
kill -TERM $daemon_pid
for _ in $(seq 1000); do
  kill -0 $daemon_pid 2>/dev/null || break
  sleep 0.01
done
kill -0 $daemon_pid 2>/dev/null && fail "ringlbd still runs 10 s after SIGTERM"
wait $daemon_pid || fail "ringlbd exited non-zero after SIGTERM"
exit_us=$(now_us)
start_daemon
restart_us=$((ready_us - term_us))
sleep 1
touch "$tmp/proxy_stop"
wait $proxy_pid || true
check_flows "across the SIGTERM restart"

# The refusal window: from the end of the last success before the first failure to the
# start of the first success after the last failure. (first_fail and last_fail are the
# times failed attempts ended: one that began just before SIGTERM may fail.)
read -r attempts failures first_fail last_fail last_ok_before first_ok_after ok_before ok_after < <(
  awk -v term="$term_us" -v ready="$ready_us" '
  $3 == "fail" { if (!ff) ff = $2; lf = $2; n++; foa = 0 }
  $3 == "ok" && !ff { lob = $2 }
  $3 == "ok" && ff && !foa { foa = $1 }
  $3 == "ok" && $2 < term { before++ }
  $3 == "ok" && $1 > ready { after++ }
  END { printf "%.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n", NR, n, ff, lf, lob, foa, before, after }' \
  "$tmp/proxy.log")
((attempts >= 20)) || fail "only $attempts proxy attempts were made"
((ok_before > 0)) || fail "no proxy connection succeeded before SIGTERM"
((ok_after > 0)) || fail "no proxy connection succeeded after the new ringlbd was ready"
window_us=0
if ((failures > 0)); then
  ((first_fail >= term_us)) || fail "a proxy connection failed $(ms term_us-first_fail) ms before SIGTERM"
  ((first_ok_after > 0)) || fail "the proxy VIP did not answer again after the restart"
  window_us=$((first_ok_after - last_ok_before))
  ((last_fail <= ready_us + 500000)) ||
    fail "a proxy connection failed $(ms last_fail-ready_us) ms after the new ringlbd was ready"
fi
((window_us <= restart_us + 500000)) ||
  fail "the proxy VIP refused for $(ms window_us) ms, the restart took $(ms restart_us) ms"
echo "ok 1 - SIGTERM restart took $(ms restart_us) ms (old daemon gone after $(ms exit_us-term_us) ms); the proxy VIP refused $failures of $attempts connections, for a window of $(ms window_us) ms"
expect_lines "after the SIGTERM restart" 5  # lines sent since the new daemon serves
lines_after=$(lines_total)
((lines_after > lines_at_term + 6 * 10)) || fail "only $((lines_after - lines_at_term)) forward lines across the restart"
echo "ok 2 - 6 forward connections kept their backends across the restart ($((lines_after - lines_at_term)) lines answered since SIGTERM, none missed)"

# --- 3. SIGKILL: the XDP program serves on, the control mount goes ----------------------------------
guardian=$(pgrep -P $daemon_pid | head -n1 || true)
[[ -n $guardian ]] || fail "ringlbd has no guardian process"
lines_at_kill=$(lines_total)
kill -KILL $daemon_pid
wait $daemon_pid 2>/dev/null || true
daemon_pid=""
kill_us=$(now_us)
gone_us=""
for _ in $(seq 500); do
  if ! grep -q " $ctl " /proc/mounts; then
    gone_us=$(now_us)
    break
  fi
  sleep 0.01
done
[[ -n $gone_us ]] || fail "the control mount is still in /proc/mounts 5 s after SIGKILL"
stat "$ctl" >/dev/null 2>&1 || fail "the control dir does not answer stat after SIGKILL (dangling)"
running() {  # pid: alive and not a zombie (whoever adopted the guardian may reap it late)
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [[ -n $state && $state != Z* ]]
}
for _ in $(seq 100); do
  running "$guardian" || break
  sleep 0.05
done
running "$guardian" && fail "the guardian $guardian still runs 5 s after SIGKILL"
[[ $(ask_proxy || true) == "" ]] || fail "the proxy VIP answers with no ringlbd"
expect_lines "no daemon running" 5
sleep 1
expect_lines "no daemon running" 5
[[ $(prog_id) == "$prog_before" ]] || fail "with no daemon, program id $(prog_id), was $prog_before"
[[ $(map_ids) == "$maps_before" ]] || fail "with no daemon, map ids changed: $(map_ids)"
[[ $(xdp_list) == "$list_before" ]] || fail "with no daemon, ringlb xdp list changed: $(xdp_list)"
lines_killed=$(lines_total)
echo "ok 3 - SIGKILL: the control mount left /proc/mounts after $(ms gone_us-kill_us) ms; $((lines_killed - lines_at_kill)) forward lines answered with no daemon; program id $prog_before, map ids and ringlb xdp list unchanged"

# --- 4. the next ringlbd adopts the pinned state --------------------------------------------------
start_daemon
grep -q "XDP maps under $pin follow the config's forward VIPs" "$fail_log" ||
  fail "the new ringlbd does not follow the pinned maps"
[[ $(ask_proxy || true) == p[12] ]] || fail "the proxy VIP does not answer after the restart"
[[ $(prog_id) == "$prog_before" ]] || fail "after the restart, program id $(prog_id), was $prog_before"
[[ $(cat "$ctl/xdp/program") == "id $prog_before native" ]] ||
  fail "xdp/program says '$(cat "$ctl/xdp/program")', want 'id $prog_before native'"
[[ $(map_ids) == "$maps_before" ]] || fail "after the restart, map ids changed: $(map_ids), were $maps_before"
[[ $(xdp_list) == "$list_before" ]] || fail "after the restart, ringlb xdp list is $(xdp_list), was $list_before"
[[ $(which_pinned) == "$which_before" ]] || fail "after the restart, ringlb which --pin-path gives $(which_pinned)"
echo "ok 4 - the next ringlbd adopted the pinned state: program id $prog_before, $(wc -l <<<"$maps_before") maps not recreated, the same ringlb xdp list and table"

# --- 5. forward connections are still on their first backend ------------------------------------
expect_lines "after the restart that followed SIGKILL" 5
touch "$tmp/stop"
for k in "${!clients[@]}"; do
  wait "${pump_pids[k]}" || true
done
check_flows "at the end"
total=0
for k in "${!clients[@]}"; do
  read -r first count <"$tmp/c$k.done"
  [[ $first == "${want[${clients[k]}]}" ]] || fail "connection $k ended on $first"
  total=$((total + count))
done
max_latency=$(awk '$2 > m {m = $2} END {print m + 0}' "$tmp"/c*.log)
logged=$(lines_total)
((logged == total)) || fail "the logs hold $logged answers, the pumps counted $total lines"
echo "ok 5 - 6 forward connections exchanged $total lines ($((total - lines_killed)) after the second start), every one answered by its first backend; slowest answer $(ms max_latency) ms"

kill -TERM $daemon_pid
wait $daemon_pid || fail "ringlbd exited non-zero"
daemon_pid=""
