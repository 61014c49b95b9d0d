#!/usr/bin/env bash
# Packets per second through ringlb's XDP program on a veth pair, against bare programs in
# the same run.
#
#   perf/xdp/pps.sh BUILD_DIR [COUNT]      (root; COUNT frames per case, default 4000000)
#
# Exits 1 when a ringlb verdict counter shows anything but forwarded VIP frames and passed
# non-VIP frames, 77 when it cannot run (not root, one CPU, a kernel that refuses
# BPF_PROG_TEST_RUN in live-frames mode).
#
# Topology: namespace G (generator) and namespace L (balancer), one veth pair. xdp_gen
# sends exactly COUNT IPv4 TCP frames from G with BPF_PROG_TEST_RUN in live-frames mode;
# L runs the program under test natively on its veth end. Both ends use threaded NAPI:
# L's NAPI thread is pinned to CPU 1 and the generator to CPU 0, so the figure is what
# one CPU of the balancer processes. Forwarded frames come back to G, where an XDP_DROP
# program takes them. "processed" is L's rx_queue_0_xdp_packets delta over the time the
# generator ran; when the balancer is the bottleneck, "offered" is higher and the veth
# ring drops the rest.
#
# Cases: bare XDP_PASS (the baseline the issue names: frames go on to L's stack), bare
# XDP_TX (the cheapest forwarder: every frame straight back), and ringlb with a forward
# VIP: established flows (1024 flows, SYNs first), a new flow in every frame, and
# non-VIP traffic (passed to the stack). Prints a table with each row's ratio to bare
# XDP_TX in the same run; every run is bounded by COUNT.
set -euo pipefail

build=${1:?usage: pps.sh BUILD_DIR [COUNT]}
count=${2:-4000000}
ringlb=$build/tools/ringlb
gen=$build/perf/xdp/xdp_gen
pass_obj=$build/bpf/ringlb_pass.bpf.o
if [[ $EUID -ne 0 ]]; then
  echo "pps.sh: skipped: needs root (namespaces, XDP)" >&2
  exit 77
fi
if [[ $(nproc) -lt 2 ]]; then
  echo "pps.sh: skipped: needs two CPUs (generator and balancer apart)" >&2
  exit 77
fi

id=$$
ns_g=ringlb-pps-g-$id
ns_l=ringlb-pps-l-$id
dev_g=pg$id
dev_l=pl$id
tmp=$(mktemp -d)
pins=$tmp/bpf/ringlb  # on a bpffs of its own: `ip netns exec` hides the host's /sys/fs/bpf
held=()

# stop PID: SIGTERM (xdp_gen detaches what it attached), SIGKILL after 2 s.
stop() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 20); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  for pid in "${held[@]}"; do
    stop "$pid"
  done
  ip netns del "$ns_g" 2>/dev/null || true
  ip netns del "$ns_l" 2>/dev/null || true
  umount "$tmp/bpf" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

in_g() { ip netns exec "$ns_g" "$@"; }
in_l() { ip netns exec "$ns_l" "$@"; }

ip netns add "$ns_g"
ip netns add "$ns_l"
ip link add "$dev_g" netns "$ns_g" address 02:00:00:00:00:0a type veth peer name "$dev_l" \
  netns "$ns_l" address 02:00:00:00:00:0b
in_g ip link set lo up
in_g ip link set "$dev_g" up
in_g ip addr add 10.99.0.2/24 dev "$dev_g"
in_l ip link set lo up
in_l ip link set "$dev_l" up
in_l ip addr add 10.99.0.1/24 dev "$dev_l"
in_l ip neigh replace 10.99.0.2 lladdr 02:00:00:00:00:0a dev "$dev_l" nud permanent
in_l ip route add 10.200.0.0/16 via 10.99.0.2
in_l sysctl -qw net.ipv4.ip_forward=1

cat >"$tmp/lb.toml" <<'EOF'
[daemon]
hash_seed = "0f0e0d0c0b0a09080706050403020100"
[[vip]]
name = "web"
listen = "10.0.0.10:80"
mode = "forward"
[[vip.backend]]
name = "b1"
address = "10.200.0.1"
[[vip.backend]]
name = "b2"
address = "10.200.0.2"
[[vip.backend]]
name = "b3"
address = "10.200.0.3"
EOF

# The generator's side drops what comes back.
# Started with ip netns exec itself, not through in_g: $! must be the process, not a subshell.
ip netns exec "$ns_g" taskset -c 0 "$gen" hold "$dev_g" drop 600 &
held+=($!)
sleep 0.3

# The generator needs BPF_PROG_TEST_RUN's live-frames mode: one frame first, and a kernel
# that refuses the mode makes the run a skip that names it.
if ! probe=$(in_g "$gen" send "$dev_g" --src-mac 02:00:00:00:00:0a --dst-mac 02:00:00:00:00:0b \
  --src 10.1.0.5 --dst 10.0.0.99 --count 1 2>&1); then
  if [[ $probe == *"skipped:"* ]]; then
    echo "pps.sh: skipped: ${probe#*skipped: }" >&2
    exit 77
  fi
  echo "pps.sh: the generator failed: $probe" >&2
  exit 1
fi

xdp_packets() {
  in_l ethtool -S "$dev_l" | awk '$1 == "rx_queue_0_xdp_packets:" { print $2 }'
}

# Threaded NAPI on both ends (a veth has NAPI once an XDP program is attached), the
# balancer's thread on CPU 1, the generator side's on CPU 0.
pin_napi() {
  local pid name
  in_g sh -c "echo 1 > /sys/class/net/$dev_g/threaded"
  in_l sh -c "echo 1 > /sys/class/net/$dev_l/threaded"
  for pid in $(pgrep -f "^napi/($dev_g|$dev_l)-" || true); do
    name=$(cat /proc/"$pid"/comm)
    if [[ $name == napi/$dev_l-* ]]; then taskset -pc 1 "$pid" >/dev/null; else taskset -pc 0 "$pid" >/dev/null; fi
  done
}

# send FRAMES DST FLAGS...: one generator run; prints "offered processed" (pps).
send() {
  local frames=$1 dst=$2
  shift 2
  pin_napi
  local before after out seconds
  before=$(xdp_packets)
  out=$(in_g taskset -c 0 "$gen" send "$dev_g" --src-mac 02:00:00:00:00:0a \
    --dst-mac 02:00:00:00:00:0b --src 10.1.0.5 --dst "$dst" --count "$frames" "$@")
  sleep 0.2
  after=$(xdp_packets)
  seconds=$(awk '{ print $5 }' <<<"$out")
  awk -v n="$frames" -v p="$((after - before))" -v s="$seconds" \
    'BEGIN { printf "%.0f %.0f\n", n / s, p / s }'
}

results=()
record() {  # name, "offered processed"
  results+=("$1|$2")
}

# 1. bare XDP_PASS
in_l ip link set dev "$dev_l" xdpdrv obj "$pass_obj" sec xdp
record "bare XDP_PASS (baseline)" "$(send "$count" 10.0.0.10)"
in_l ip link set dev "$dev_l" xdpdrv off

# 2. bare XDP_TX
ip netns exec "$ns_l" taskset -c 1 "$gen" hold "$dev_l" bounce 600 &
bounce_pid=$!
held+=($bounce_pid)
sleep 0.3
record "bare XDP_TX" "$(send "$count" 10.0.0.10)"
stop "$bounce_pid"
sleep 0.2

# 3-5. ringlb
mkdir -p "$tmp/bpf"
mount -t bpf bpf "$tmp/bpf"
in_l "$ringlb" attach "$dev_l" -c "$tmp/lb.toml" --pin-path "$pins" >/dev/null
send 1024 10.0.0.10 --flows 1024 --syn >/dev/null
record "ringlb forward, established flows (1024)" "$(send "$count" 10.0.0.10 --flows 1024)"
record "ringlb forward, new flow every frame" "$(send "$count" 10.0.0.10 --new-flows --syn)"
record "ringlb, non-VIP (pass to the stack)" "$(send "$count" 10.0.0.99)"
# The program's own verdict counters say what it did with the frames it processed: VIP
# frames forwarded, the others passed as not for a VIP, none unparsable (a generator that
# sent damaged frames shows as not_ip or malformed; the kernel's own few ICMPv6 frames on
# link-up count as pass_icmp).
verdicts=$(in_l "$ringlb" stats --pin-path "$pins" 2>/dev/null | grep -E "^ *xdp.verdict.*packets")
echo "$verdicts"
verdict() { awk -v name="xdp.verdict.$1.packets" '$1 == name { print $2 }' <<<"$verdicts"; }
if [[ $(verdict tx_forward) -eq 0 || $(verdict pass_not_vip) -eq 0 ||
  $(verdict pass_not_ip) -ne 0 || $(verdict pass_malformed) -ne 0 ]]; then
  echo "pps.sh: FAIL: the program did not forward the VIP frames and pass the others" >&2
  exit 1
fi
in_l "$ringlb" detach "$dev_l" --pin-path "$pins" --unpin >/dev/null

# Each row's processed rate against bare XDP_TX's in this run (row 2): the cheapest
# forwarder, what the issue's ratios are measured against.
IFS='|' read -r _ rates <<<"${results[1]}"
read -r _ bounce <<<"$rates"
printf '\n%-42s %14s %14s %12s\n' "case ($count frames each)" "offered pps" "processed pps" \
  "vs XDP_TX"
for r in "${results[@]}"; do
  IFS='|' read -r name rates <<<"$r"
  read -r offered processed <<<"$rates"
  ratio=$(awk -v p="$processed" -v b="$bounce" 'BEGIN { printf "%.2fx", b > 0 ? p / b : 0 }')
  printf '%-42s %14s %14s %12s\n' "$name" "$offered" "$processed" "$ratio"
done
