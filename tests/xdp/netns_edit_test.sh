#!/usr/bin/env bash
# Forward mode edited with the CLI alone (label integration, needs root): the pinned maps
# are the state, no config file and no daemon take part after `ringlb attach`.
#
#   client ns (10.79.0.100-.130) ─┐
#   lb ns     (10.79.0.2)      ─┼─ bridge in a switch ns
#   b1..b3 ns (10.79.0.21-.23) ─┘
#
# The lb is attached with a config that only has an unrelated VIP ("seed"). Then:
#   1. `ringlb xdp vip add` and `backend add` create VIP web (10.80.0.10:80); `ringlb xdp
#      list` shows it, and `ringlb which --pin-path` (the pinned table) agrees, for 31
#      clients, with `ringlb which -c` on a config that holds the same VIP (the builder
#      the loader uses);
#   2. real TCP from 31 client addresses reaches the backend the pinned table names;
#   3. a re-weight by CLI keeps an established connection on its backend while a new
#      connection from that client goes where the new table says;
#   4. every bad command (unknown VIP or backend, duplicate name or address, bad
#      address, weight out of range, bad state, not attached) exits non-zero with its
#      message, and `ringlb xdp list` is byte-identical before and after;
#   5. removing a backend and the VIP by CLI: traffic follows, the VIP is gone.
# Everything (namespaces, mounts, processes, pins) is removed on exit, also on failure.
#
# Usage: netns_edit_test.sh RINGLB_BINARY PASS_OBJECT
# Exit 77: skipped (not root, or a missing tool).
set -euo pipefail

ringlb=$1
pass_obj=$2
id=$$
ns_sw=rxsw$id
ns_c=rxc$id
ns_l=rxl$id
backends=(b1 b2 b3)
tmp=$(mktemp -d /tmp/ringlb-edit.XXXXXX)
pins=$tmp/bpffs
pin=$pins/ringlb
source "$(dirname "$0")/lib.sh"

need_root "network namespaces, XDP" ip socat ethtool mount

cleanup() {
  set +e
  kill_started
  del_namespaces $ns_c $ns_l $ns_sw "${backends[@]/#/rx$id}"
  mountpoint -q "$pins" && umount "$pins"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 143" TERM INT

# --- topology -------------------------------------------------------------------------
forward_lab_add 10.79.0 10.80.0.10 rx$id 30

# The attach config knows nothing of VIP web: it comes from the CLI only.
cat >"$tmp/seed.toml" <<EOF
[daemon]
hash_seed = "0123456789abcdef0123456789abcdef"
[xdp]
interface = "eth0"
steer = false
[[vip]]
name = "seed"
listen = "10.80.0.99:80"
mode = "forward"
[[vip.backend]]
name = "s1"
address = "10.79.0.23"
EOF

# --- 0. not attached yet ----------------------------------------------------------------
set +e
out=$("$ringlb" xdp list --pin-path "$pin" 2>&1)
rc=$?
set -e
[[ $rc == 1 && $out == *"no ringlb XDP program has pinned its maps under $pin"* ]] ||
  fail "list before attach: exit $rc, '$out'"
echo "ok 0 - before attach: list exits 1 and says to run ringlb attach"

inns $ns_l "$ringlb" attach eth0 -c "$tmp/seed.toml" --pin-path "$pin" >/dev/null ||
  fail "ringlb attach"
cli() { inns $ns_l "$ringlb" "$@" --pin-path "$pin"; }

# --- 1. a VIP and its backends by CLI only -------------------------------------------------
cli xdp vip add web --listen 10.80.0.10:80 --proto tcp >/dev/null || fail "vip add"
cli xdp backend add web b1 10.79.0.21 >/dev/null || fail "backend add b1"
cli xdp backend add web b2 10.79.0.22 --weight 1 >/dev/null || fail "backend add b2"
cli xdp backend add web b3 10.79.0.23 --weight 2 --state up >/dev/null || fail "backend add b3"
list=$(cli xdp list)
want_lines=(
  "vip seed 10.80.0.99:80 tcp forward"
  "  backend s1 10.79.0.23 weight 1 up slots 65537"
  "vip web 10.80.0.10:80 tcp forward"
)
for line in "${want_lines[@]}"; do
  grep -qxF -- "$line" <<<"$list" || fail "list lacks '$line':"$'\n'"$list"
done
slots_of() {  # list output, backend -> its slot count in the pinned table
  awk -v b="$2" '$1 == "backend" && $2 == b {print $NF}' <<<"$1"
}
for b in b1 b2 b3; do
  [[ $(slots_of "$list" $b) -gt 0 ]] || fail "$b owns no slot:"$'\n'"$list"
done
total=$(($(slots_of "$list" b1) + $(slots_of "$list" b2) + $(slots_of "$list" b3)))
[[ $total == 65537 ]] || fail "web's slots sum to $total, want 65537"
[[ $(slots_of "$list" b3) -gt $(slots_of "$list" b1) ]] || fail "b3 (weight 2) owns fewer slots than b1"

# The same VIP as a config: `ringlb which -c` builds the table the way attach would.
write_config() {  # file, weight of b1, weight of b2, weight of b3
  cp "$tmp/seed.toml" "$1"
  printf '[[vip]]\nname = "web"\nlisten = "10.80.0.10:80"\nmode = "forward"\n' >>"$1"
  local i=1
  for w in "$2" "$3" "$4"; do
    printf '[[vip.backend]]\nname = "b%d"\naddress = "10.79.0.%d"\nweight = %d\n' $i $((20 + i)) "$w" >>"$1"
    i=$((i + 1))
  done
}
write_config "$tmp/w112.toml" 1 1 2
write_config "$tmp/w151.toml" 1 5 2
pinned() { "$ringlb" which --pin-path "$pin" --vip web "$1" | awk '{print $2}'; }
predicted() { "$ringlb" which -c "$1" --vip web "$2" | awk '{print $2}'; }
for i in $(seq 100 130); do
  a=$(pinned 10.79.0.$i)
  b=$(predicted "$tmp/w112.toml" 10.79.0.$i)
  [[ -n $a && $a == "$b" ]] || fail "client 10.79.0.$i: pinned table names '$a', config builder '$b'"
done
echo "ok 1 - VIP web added by CLI; list shows it, the pinned table equals the config builder's"

# --- 2. real traffic reaches the backend the pinned table names ----------------------------
ask() {  # client address -> the backend name that answered one line
  inns $ns_c timeout 5 socat -t 2 - TCP:10.80.0.10:80,bind="$1",connect-timeout=3 <<<"hello" |
    head -n1
}
for _ in $(seq 1 20); do
  [[ -n $(ask 10.79.0.100 || true) ]] && break
  sleep 0.1
done
declare -A seen
for i in $(seq 100 130); do
  client=10.79.0.$i
  want=$(pinned $client)
  got=$(ask $client || true)
  [[ $got == "$want" ]] || fail "client $client: answered by '${got}', pinned table names '$want'"
  seen[$got]=1
done
[[ ${#seen[@]} -ge 2 ]] || fail "31 clients all landed on one backend: ${!seen[*]}"
stats=$(inns $ns_l "$ringlb" stats --pin-path "$pin" --control-dir "$tmp/no-daemon")
packets=$(awk '$1 == "xdp.vip.web.packets" {print $2}' <<<"$stats")
[[ ${packets:-0} -gt 0 ]] || fail "ringlb stats does not name VIP web, or counts no packet:"$'\n'"$stats"
inns $ns_l "$ringlb" stats --json --pin-path "$pin" --control-dir "$tmp/no-daemon" |
  grep -q '"names":"web/b1"' || fail "ringlb stats --json does not name backend web/b1"
# Every client's SYN made an embryonic entry and its next packet promoted it.
embryonic=$(awk '$1 == "xdp.flow_table.insert_embryonic" {print $2}' <<<"$stats")
promoted=$(awk '$1 == "xdp.flow_table.promoted" {print $2}' <<<"$stats")
[[ ${embryonic:-0} -gt 0 && ${promoted:-0} -gt 0 ]] ||
  fail "ringlb stats shows no embryonic insert or promotion of the flow table:"$'\n'"$stats"
echo "ok 2 - 31 clients reached the backend the pinned table names (${!seen[*]}); stats names them"

# --- 3. a CLI re-weight keeps established flows ---------------------------------------------
mover=""
for i in $(seq 100 130); do
  client=10.79.0.$i
  before=$(pinned $client)
  after=$(predicted "$tmp/w151.toml" $client)
  if [[ $before != "$after" ]]; then
    mover=$client
    break
  fi
done
[[ -n $mover ]] || fail "no client moves when b2's weight goes from 1 to 5"
coproc conn { inns $ns_c timeout 30 socat -t 5 - TCP:10.80.0.10:80,bind="$mover",connect-timeout=3; }
pids+=($conn_PID)
echo first >&"${conn[1]}"
read -r -t 5 first <&"${conn[0]}" || fail "no answer on the long-lived connection"
[[ $first == "$before" ]] || fail "long-lived connection from $mover answered by $first, want $before"
cli xdp backend set web b2 --weight 5 >/dev/null || fail "backend set --weight 5"
[[ $(pinned "$mover") == "$after" ]] || fail "after the re-weight the table gives $mover '$(pinned "$mover")', want $after"
echo second >&"${conn[1]}"
read -r -t 5 second <&"${conn[0]}" || fail "the established connection broke after the re-weight"
[[ $second == "$before" ]] || fail "established connection moved from $before to $second"
new=$(ask "$mover" || true)
[[ $new == "$after" ]] || fail "a new connection from $mover went to '$new', want $after"
grep -qxF "  backend b2 10.79.0.22 weight 5 up slots $(slots_of "$(cli xdp list)" b2)" <<<"$(cli xdp list)" ||
  fail "list does not show b2 at weight 5"
echo "ok 3 - re-weight by CLI: the open connection stayed on $before, a new one went to $after"

# --- 4. bad commands: an exit status, a message, and no change -------------------------------
before_list=$(cli xdp list)
bad() {  # expected message, command...
  local want=$1
  shift
  local out rc
  set +e
  out=$(inns $ns_l "$ringlb" "$@" 2>&1)
  rc=$?
  set -e
  [[ $rc != 0 ]] || fail "'$*' succeeded"
  [[ $out == *"$want"* ]] || fail "'$*': message '$out' lacks '$want'"
  local after_list
  after_list=$(cli xdp list)
  [[ $after_list == "$before_list" ]] || fail "'$*' changed the maps:"$'\n'"$after_list"
}
P=(--pin-path "$pin")
bad "no vip named nope" xdp backend add nope b9 10.79.0.29 "${P[@]}"
bad "no vip named nope" xdp vip remove nope "${P[@]}"
bad "vip web has no backend named b9" xdp backend set web b9 --weight 2 "${P[@]}"
bad "vip web has no backend named b9" xdp backend remove web b9 "${P[@]}"
bad 'vip[web].backend[b1].name: duplicate backend name "b1" in this vip' \
  xdp backend add web b1 10.79.0.29 "${P[@]}"
bad "vip[web].backend[b4].address: 10.79.0.21 is already backend b1 of this vip" \
  xdp backend add web b4 10.79.0.21 "${P[@]}"
bad 'vip[web].backend[b4].address: expected an IP address without port (forward mode), got "10.79.0.300"' \
  xdp backend add web b4 10.79.0.300 "${P[@]}"
bad 'vip[web].backend[b4].address: expected an IP address without port (forward mode), got "10.79.0.24:80"' \
  xdp backend add web b4 10.79.0.24:80 "${P[@]}"
bad "vip[web].backend[b1].weight: expected an integer in 0..10000, got 20000" \
  xdp backend set web b1 --weight 20000 "${P[@]}"
bad 'vip[web].backend[b1].weight: expected an integer in 0..10000, got "-1"' \
  xdp backend set web b1 --weight -1 "${P[@]}"
bad 'vip[web].backend[b1].state: expected one of up, drain, down, got "sideways"' \
  xdp backend set web b1 --state sideways "${P[@]}"
bad "nothing to set" xdp backend set web b1 "${P[@]}"
bad 'vip[web].name: duplicate vip name "web"' xdp vip add web --listen 10.80.0.11:80 "${P[@]}"
bad "vip[web2].listen: another vip already listens on 10.80.0.10:80/tcp" \
  xdp vip add web2 --listen 10.80.0.10:80 "${P[@]}"
bad 'vip[bad/name].name: expected 1..64 characters of [A-Za-z0-9_.-], got "bad/name"' \
  xdp vip add bad/name --listen 10.80.0.12:80 "${P[@]}"
bad 'vip[web3].listen: expected ip:port' xdp vip add web3 --listen 10.80.0.13 "${P[@]}"
bad 'vip[web3].protocol: expected one of tcp, udp, got "sctp"' \
  xdp vip add web3 --listen 10.80.0.13:80 --proto sctp "${P[@]}"
bad "no ringlb XDP program has pinned its maps under $pins/elsewhere" \
  xdp backend add web b4 10.79.0.24 --pin-path "$pins/elsewhere"
echo "ok 4 - 18 bad commands: each exits non-zero with its message; list byte-identical"

# --- 5. remove a backend, then the VIP ---------------------------------------------------------
cli xdp backend remove web b2 >/dev/null || fail "backend remove b2"
list=$(cli xdp list)
grep -q "backend b2" <<<"$list" && fail "b2 still listed after remove"
for i in $(seq 100 110); do
  client=10.79.0.$i
  want=$(pinned $client)
  [[ $want == b1 || $want == b3 ]] || fail "client $client maps to '$want' after removing b2"
  got=$(ask $client || true)
  [[ $got == "$want" ]] || fail "client $client: answered by '${got}', pinned table names '$want'"
done
cli xdp vip remove web >/dev/null || fail "vip remove web"
list=$(cli xdp list)
grep -q "vip web" <<<"$list" && fail "web still listed after remove"
grep -qxF "vip seed 10.80.0.99:80 tcp forward" <<<"$list" || fail "seed vanished with web"
[[ -z $(ask 10.79.0.100 || true) ]] || fail "VIP web still answers after its removal"
echo "ok 5 - backend and VIP removed by CLI: traffic followed, seed untouched"

inns $ns_l "$ringlb" detach eth0 --pin-path "$pin" --unpin >/dev/null || fail "ringlb detach"
[[ ! -e $pin ]] || fail "detach --unpin left pins behind (vip_index among them?): $(ls "$pin")"
echo "ok 6 - detach --unpin removed the state maps, the vip index and the pin directory"
