#!/usr/bin/env bash
# ringlb which for proxy VIPs agrees with where real connections land:
#   - ip_hash VIP: connections from 24 loopback source addresses (bound before connect)
#     reach the backend `which` names (the backends send their name), and, with [xdp]
#     steer on, are accepted by the worker `which` names (worker.<n>.accepted);
#   - a round_robin VIP: which says the backend is not a function of the client address;
#   - bad input: not an address (exit 2), unknown VIP (exit 1).
set -uo pipefail
ringlb=$1
ringlbd=$2
source "$(dirname "$0")/lib.sh"
[[ $(id -u) == 0 ]] || { echo "SKIP: the control filesystem and steering need root"; exit 0; }

for b in red green blue; do start_backend $b; done
port=$(free_port)
rr_port=$(free_port)
cat >"$dir/ringlb.toml" <<CONF
[daemon]
workers = 2
hash_seed = "8899aabbccddeeff0011223344556677"
[xdp]
interface = "lo"
[[vip]]
name = "hashed"
listen = "127.0.0.1:$port"
policy = "ip_hash"
[[vip.backend]]
name = "red"
address = "127.0.0.1:${backend_port[red]}"
[[vip.backend]]
name = "green"
address = "127.0.0.1:${backend_port[green]}"
weight = 2
[[vip.backend]]
name = "blue"
address = "127.0.0.1:${backend_port[blue]}"
[[vip]]
name = "rr"
listen = "127.0.0.1:$rr_port"
[[vip.backend]]
name = "red"
address = "127.0.0.1:${backend_port[red]}"
CONF
start_ringlbd "$ringlbd" "$dir/ringlb.toml"
steered=0
grep -q "steered by client hash" "$dir/ringlbd.log" && steered=1

stat() { awk -v n="$1" '$1 == n {print $2}' "$dir/ctl/stats"; }
declare -A backends_seen workers_seen
for host in $(seq 10 33); do
  source=127.0.0.$host
  line=$("$ringlb" which -c "$dir/ringlb.toml" --vip hashed "$source") || fail "which $source: $line"
  read -r vip want address _ worker _ <<<"$line"
  [[ $vip == hashed && $address == "127.0.0.1:${backend_port[$want]:-x}" ]] || fail "which $source: $line"
  before0=$(stat worker.0.accepted) before1=$(stat worker.1.accepted)
  landed=$(python3 "$here/traffic.py" send "$port" 3 10 "$source") || fail "traffic from $source"
  while read -r _ got; do
    [[ $got == "$want" ]] || fail "$source landed on $got, which said $want"
  done <<<"$landed"
  backends_seen[$want]=1
  if ((steered)); then
    after0=$(stat worker.0.accepted) after1=$(stat worker.1.accepted)
    [[ $worker == [01] ]] || fail "which gave no worker with steer on: $line"
    if [[ $worker == 0 ]]; then got=$((after0 - before0)) other=$((after1 - before1))
    else got=$((after1 - before1)) other=$((after0 - before0)); fi
    [[ $got == 3 && $other == 0 ]] || fail "$source: worker $worker accepted $got, the other $other"
    workers_seen[$worker]=1
  fi
done
[[ ${#backends_seen[@]} == 3 ]] || fail "24 addresses reached only: ${!backends_seen[*]}"
if ((steered)); then
  [[ ${#workers_seen[@]} == 2 ]] || fail "24 addresses used only worker ${!workers_seen[*]}"
  echo "which: 24 client addresses x 3 connections on the predicted backend and worker"
else
  echo "which: 24 client addresses x 3 connections on the predicted backend (steering unavailable: workers not checked)"
fi

out=$("$ringlb" which -c "$dir/ringlb.toml" --vip rr 127.0.0.9) || fail "which rr: $out"
[[ $out == "rr - - worker "*"not a function of the client address"* ]] || fail "which rr: $out"
out=$("$ringlb" which -c "$dir/ringlb.toml" 127.0.0.9) || fail "which: $out"
[[ $(wc -l <<<"$out") == 2 ]] || fail "which for every VIP: $out"

err=$("$ringlb" which -c "$dir/ringlb.toml" 127.0.0.300 2>&1); rc=$?
[[ $rc == 2 && $err == *'not an IP address'* ]] || fail "bad address: rc=$rc $err"
err=$("$ringlb" which -c "$dir/ringlb.toml" --vip nope 127.0.0.9 2>&1); rc=$?
[[ $rc == 1 && $err == *'no VIP named nope'* ]] || fail "bad vip: rc=$rc $err"
err=$("$ringlb" which -c "$dir/missing.toml" 127.0.0.9 2>&1); rc=$?
[[ $rc == 1 && $err == *'missing.toml'* ]] || fail "missing config: rc=$rc $err"
echo "which: ok"
