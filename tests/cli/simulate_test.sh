#!/usr/bin/env bash
# ringlb simulate on the demo config: every policy prints a share table whose client
# counts add up, and bad input fails with a clear message and exit code.
set -euo pipefail
ringlb=$1
config=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$ringlb" simulate --config "$config" --clients 3000 --vip web)
for policy in round_robin weighted least_request random ip_hash; do
  grep -q "policy $policy, 3000 clients" <<<"$out" || fail "no section for $policy"
done
# Each section's client counts add up to 3000.
awk '/policy /{if (sum) print sum; sum=0; next} /^  [a-z0-9]/ && $5 ~ /^[0-9]+$/ {sum+=$5} END{print sum}' <<<"$out" |
  while read -r total; do [[ $total == 3000 ]] || fail "a section adds up to $total"; done

# round_robin ignores weights: three backends get 1000 each.
rr=$("$ringlb" simulate --config "$config" --clients 3000 --vip web --policy round_robin)
[[ $(grep -c ' 1000 ' <<<"$rr") == 3 ]] || fail "round_robin is not even: $rr"

# --list prints one line per client.
list=$("$ringlb" simulate --config "$config" --clients 5 --vip web --policy ip_hash --list)
[[ $(grep -c -- ' -> ' <<<"$list") == 5 ]] || fail "--list printed: $list"

# Bad input: unknown policy (exit 2), unknown vip (exit 1), bad config (exit 1).
set +e
err=$("$ringlb" simulate --config "$config" --policy fastest 2>&1); rc=$?
set -e
[[ $rc == 2 && $err == *'unknown policy "fastest"'* ]] || fail "bad policy: rc=$rc $err"
set +e
err=$("$ringlb" simulate --config "$config" --vip nope 2>&1); rc=$?
set -e
[[ $rc == 1 && $err == *'no vip named "nope"'* ]] || fail "bad vip: rc=$rc $err"
bad=$(mktemp)
trap 'rm -f "$bad"' EXIT
printf '[[vip]]\nname="w"\nlisten="127.0.0.1:1"\n' >"$bad"
set +e
err=$("$ringlb" simulate --config "$bad" 2>&1); rc=$?
set -e
[[ $rc == 1 && $err == *'empty pool'* ]] || fail "bad config: rc=$rc $err"
echo "simulate: ok"
