#!/usr/bin/env python3
"""Alternating runs of bench_xdp builds: the cost above bare of some warm rows, per build.

    perf/xdp/ab.py ROWS ROUNDS BENCH [BENCH ...]

ROWS: warm rows without their BM_Warm_ prefix, comma-separated (VipEstablishedFlowV4,
FloorEstablished). Each of ROUNDS rounds runs every BENCH binary once on CPU 1 (the order
reversed every other round, so that a drift of the machine falls on both sides), with the
rows and the bare XDP_PASS row (3 repetitions, random interleaving). Prints, per row and
binary, the median over the rounds of (row - bare) and every round's value. Single runs
of one binary spread by about +-10 ns on the VMs of this project: compare builds with
many rounds, never with one. To keep a build, copy its build/perf/xdp/bench_xdp away
before building the next. Exits 1 when a row gives no result, 77 when not root.
"""
import os
import re
import statistics
import subprocess
import sys


def run(bench, rows):
    pattern = "BM_Warm_(BareXdpPass|" + "|".join(rows) + ")/"
    try:
        out = subprocess.run(
            ["taskset", "-c", "1", bench, "--benchmark_filter=" + pattern,
             "--benchmark_min_time=0.3", "--benchmark_repetitions=3",
             "--benchmark_report_aggregates_only=true",
             "--benchmark_enable_random_interleaving=true"],
            capture_output=True, text=True, check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit(f"ab.py: running {bench} failed: {e}")
    medians = {}
    for line in out.stdout.splitlines():
        m = re.match(r"BM_Warm_(\w+)/manual_time_median .*ns_per_packet=([\d.]+)", line)
        if m:
            medians[m.group(1)] = float(m.group(2))
    missing = [r for r in rows + ["BareXdpPass"] if r not in medians]
    if missing:
        sys.exit(f"ab.py: {bench} gave no result for {', '.join(missing)} "
                 f"(no such row, or the row was skipped):\n{out.stderr}{out.stdout}")
    return {r: medians[r] - medians["BareXdpPass"] for r in rows}


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    if os.geteuid() != 0:
        print("ab.py: skipped: BPF_PROG_TEST_RUN needs root", file=sys.stderr)
        sys.exit(77)
    rows = [r for r in sys.argv[1].split(",") if r]
    try:
        rounds = int(sys.argv[2])
    except ValueError:
        sys.exit(f"ab.py: ROUNDS must be a number, not {sys.argv[2]!r}")
    if not rows or rounds < 1:
        sys.exit("ab.py: give at least one row and one round")
    benches = sys.argv[3:]
    above = {(b, r): [] for b in benches for r in rows}
    for i in range(rounds):
        for bench in benches if i % 2 == 0 else benches[::-1]:
            for row, value in run(bench, rows).items():
                above[(bench, row)].append(value)
    width = max(len(b) for b in benches)
    for row in rows:
        for bench in benches:
            values = above[(bench, row)]
            print(f"{row:30s} {bench:{width}s} median {statistics.median(values):+7.1f}  runs "
                  + " ".join(f"{v:+.1f}" for v in values))


if __name__ == "__main__":
    main()
