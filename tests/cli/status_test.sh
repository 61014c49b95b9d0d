#!/usr/bin/env bash
# ringlb status, and the attach/detach life cycle as status sees it:
#   1. status names the running daemon's control filesystem and its worker count;
#   2. (root) in a namespace with a veth pair: attach -> status shows the program on the
#      device and the pinned maps; stats reads the XDP counters; attaching again with the
#      same config is idempotent; attach with a bad config or a missing device fails
#      with a clear message and leaves the program and maps untouched; detach -> status
#      shows no program;
#   3. (root) attach over another tool's XDP program is refused, naming it, and changes
#      nothing; --force replaces it.
# Namespaces, the bpffs mount, pins and processes are removed on exit, also on failure.
set -uo pipefail
ringlb=$1
ringlbd=$2
pass_obj=${3:-}  # a bare XDP_PASS object: "another tool's program"
source "$(dirname "$0")/lib.sh"
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (control filesystem, namespaces, XDP)"; exit 0; }

ns=rlcli$$
peer=rlclip$$
pins=$dir/bpffs
cleanup_netns() {
  for n in $ns $peer; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  mountpoint -q "$pins" && umount "$pins"
  cleanup
}
trap cleanup_netns EXIT
inns() { local n=$1; shift; ip netns exec "$n" "$@"; }

# 1. The daemon as status sees it.
start_backend one
port=$(free_port)
cat >"$dir/proxy.toml" <<CONF
[daemon]
workers = 3
[[vip]]
name = "web"
listen = "127.0.0.1:$port"
[[vip.backend]]
name = "one"
address = "127.0.0.1:${backend_port[one]}"
CONF
start_ringlbd "$ringlbd" "$dir/proxy.toml"
out=$("$ringlb" status --control-dir "$dir/ctl" --pin-path "$dir/none") || fail "status: $out"
grep -q "^daemon: control filesystem at $dir/ctl, 3 workers, 1 proxy VIPs" <<<"$out" || fail "status: $out"
grep -q "^maps: none pinned under $dir/none" <<<"$out" || fail "status maps: $out"
out=$("$ringlb" status --control-dir "$dir/elsewhere" --pin-path "$dir/none") || fail "status: $out"
grep -q "^daemon: not running (no control filesystem mounted at $dir/elsewhere)" <<<"$out" || fail "status: $out"
echo "status: daemon found (3 workers), absence reported"

# 2. XDP life cycle in a namespace.
command -v ip >/dev/null || { echo "SKIP: no ip(8) for the XDP part"; exit 0; }
ip netns add $ns || fail "ip netns add"
ip netns add $peer || fail "ip netns add"
ip link add veth0 netns $ns type veth peer name veth1 netns $peer || fail "veth"
inns $ns ip addr add 10.91.0.1/24 dev veth0
inns $peer ip addr add 10.91.0.2/24 dev veth1
for n in $ns $peer; do inns $n ip link set lo up; done
inns $ns ip link set veth0 up
inns $peer ip link set veth1 up
mkdir -p "$pins" && mount -t bpf bpf "$pins" || fail "mount bpffs"
pin=$pins/ringlb

cat >"$dir/xdp.toml" <<CONF
[daemon]
hash_seed = "00112233445566778899aabbccddeeff"
[xdp]
interface = "veth0"
attach = "native"
steer = false
[[vip]]
name = "fwd"
listen = "10.92.0.10:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.91.0.2"
CONF
printf '[[vip]]\nname = "bad"\nlisten = "10.92.0.11:80"\n[[vip.backend]]\nname = "x"\naddress = "10.91.0.3:80"\nweight = 20000\n' \
  >>"$dir/bad.toml"
cat "$dir/xdp.toml" >>"$dir/bad.toml"

status() { inns $ns "$ringlb" status --pin-path "$pin" --control-dir "$dir/none"; }
out=$(status) || fail "status before attach: $out"
grep -q '^xdp: no program attached' <<<"$out" || fail "status before attach: $out"

out=$(inns $ns "$ringlb" attach veth0 -c "$dir/xdp.toml" --mode native --pin-path "$pin" 2>&1) ||
  fail "attach: $out"
first=$(status) || fail "status: $first"
grep -Eq '^xdp veth0: native id [0-9]+ ringlb_xdp$' <<<"$first" || fail "status after attach: $first"
grep -Eq '^map vips: hash max_entries 512 key [0-9]+ value [0-9]+ entries 1$' <<<"$first" ||
  fail "status maps: $first"
grep -Eq '^map verdict_stats: percpu_array max_entries [0-9]+' <<<"$first" || fail "status maps: $first"
id1=$(awk '$1 == "xdp" && $2 == "veth0:" {print $5}' <<<"$first")
echo "attach: status shows ringlb_xdp id $id1 on veth0, native"

# XDP counters through stats: traffic from the peer lands in the verdict counters.
inns $peer python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"x" * 100, ("10.91.0.1", 9))
' || fail "UDP through veth"
sleep 0.2
inns $ns "$ringlb" stats --json --pin-path "$pin" --control-dir "$dir/none" >"$dir/xdp.json" ||
  fail "stats with XDP: $(cat "$dir/xdp.json")"
python3 - "$here/stats.schema.json" "$dir/xdp.json" <<'PY' || fail "stats xdp: $(cat "$dir/xdp.json")"
import json, sys
import jsonschema
doc = json.load(open(sys.argv[2]))
jsonschema.validate(doc, json.load(open(sys.argv[1])))
x = doc["xdp"]
assert x["available"] and not doc["proxy"]["available"], doc
verdicts = {v["verdict"]: v["counters"]["packets"] for v in x["verdicts"]}
assert len(verdicts) == 18, verdicts  # enum ringlb_verdict
assert verdicts["pass_not_vip"] >= 3, verdicts  # the datagrams
assert sum(c["counters"]["packets"] for c in x["cpus"]) == sum(verdicts.values()), x["cpus"]
assert [(v["address"], v["mode"]) for v in x["vips"]] == [("10.92.0.10:80/tcp", "forward")], x["vips"]
assert [b["address"] for b in x["backends"]] == ["10.91.0.2"], x["backends"]
PY
echo "stats: XDP verdict, CPU, VIP and backend counters read from the pinned maps"

# Attaching again with the same config: same maps, same entries, still one program.
out=$(inns $ns "$ringlb" attach veth0 -c "$dir/xdp.toml" --mode native --pin-path "$pin" 2>&1) ||
  fail "re-attach: $out"
second=$(status) || fail "status: $second"
[[ $(grep -c '^xdp ' <<<"$second") == 1 ]] && grep -Eq '^xdp veth0: native id [0-9]+ ringlb_xdp$' <<<"$second" ||
  fail "status after re-attach: $second"
[[ $(grep '^map ' <<<"$first") == $(grep '^map ' <<<"$second") ]] ||
  fail "maps changed on re-attach: $first // $second"
echo "re-attach: idempotent (one program, the same maps)"

# A bad config and a missing device fail clearly and change nothing.
id2=$(awk '$1 == "xdp" && $2 == "veth0:" {print $5}' <<<"$second")
err=$(inns $ns "$ringlb" attach veth0 -c "$dir/bad.toml" --pin-path "$pin" 2>&1); rc=$?
[[ $rc == 1 && $err == *'weight'*'20000'* ]] || fail "bad config: rc=$rc $err"
err=$(inns $ns "$ringlb" attach nosuchdev0 -c "$dir/xdp.toml" --pin-path "$pin" 2>&1); rc=$?
[[ $rc == 1 && $err == *'nosuchdev0'* ]] || fail "missing device: rc=$rc $err"
third=$(status) || fail "status: $third"
[[ $third == "$second" ]] || fail "state changed after failed attaches: $second // $third"
[[ $(awk '$1 == "xdp" && $2 == "veth0:" {print $5}' <<<"$third") == "$id2" ]] || fail "program replaced"
echo "bad config / no such device: exit 1, program $id2 and maps untouched"

out=$(inns $ns "$ringlb" detach veth0 --pin-path "$pin" 2>&1) || fail "detach: $out"
out=$(status) || fail "status: $out"
grep -q '^xdp: no program attached' <<<"$out" || fail "status after detach: $out"
echo "detach: status shows no program"

# Another tool's XDP program: attach refuses, names it and says how to go on, and
# changes nothing (that program stays, the pinned maps keep their entries); --force
# replaces it.
if [[ -f $pass_obj ]]; then
  maps_before=$(grep '^map ' <<<"$out")
  inns $ns ip link set dev veth0 xdpdrv obj "$pass_obj" sec xdp || fail "attach the other program"
  err=$(inns $ns "$ringlb" attach veth0 -c "$dir/xdp.toml" --pin-path "$pin" 2>&1); rc=$?
  [[ $rc == 1 && $err == *"already has XDP program 'ringlb_pass'"*"xdp off"*"--force"* ]] ||
    fail "attach over another program: rc=$rc $err"
  out=$(status) || fail "status: $out"
  grep -Eq '^xdp veth0: native id [0-9]+ ringlb_pass$' <<<"$out" || fail "the other program went: $out"
  [[ $(grep '^map ' <<<"$out") == "$maps_before" ]] || fail "maps changed: $maps_before // $out"
  out=$(inns $ns "$ringlb" attach veth0 -c "$dir/xdp.toml" --pin-path "$pin" --force 2>&1) ||
    fail "attach --force: $out"
  out=$(status) || fail "status: $out"
  grep -Eq '^xdp veth0: native id [0-9]+ ringlb_xdp$' <<<"$out" || fail "after --force: $out"
  inns $ns "$ringlb" detach veth0 --pin-path "$pin" >/dev/null || fail "detach after --force"
  echo "another tool's program: attach refuses (exit 1, names it, changes nothing); --force replaces it"
fi
echo "status: ok"
