#!/usr/bin/env python3
"""Where one bench_xdp row spends its time, by source line of the BPF program.

    perf/xdp/profile.py BUILD_DIR ROW [--program NAME] [--seconds S] [--out FILE]

Runs BM_Warm_ROW of BUILD_DIR/perf/xdp/bench_xdp on CPU 1 for S seconds (default 6) under
`perf record -e cpu-clock` (this VM has no PMU), reads the jited image and line info of
the program NAME (default ringlb_xdp) with BUILD_DIR/perf/xdp/jit_dump while the row runs,
and maps every sample onto the image's instructions (objdump) and source lines. Prints
the samples by source line, and writes the annotated image to FILE (default
/tmp/ringlb-profile.txt). The ratio of the program's samples to the wrapper's
(bpf_prog_*_restore) is a comparison between builds that shares its time window, which
the wall-clock rows do not.

Needs root, perf and objdump. Samples at the instruction after a load or a call are that
load's or call's cost (cpu-clock has skid).
"""
import argparse
import bisect
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build_dir")
    ap.add_argument("row", help="a warm row without its BM_Warm_ prefix, e.g. VipEstablishedFlowV4")
    ap.add_argument("--program", default="ringlb_xdp")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--out", default="/tmp/ringlb-profile.txt")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("profile.py: needs root")
    if args.seconds <= 0 or args.seconds > 60:
        sys.exit("profile.py: --seconds must be in (0, 60]")
    bench = os.path.join(args.build_dir, "perf/xdp/bench_xdp")
    dump = os.path.join(args.build_dir, "perf/xdp/jit_dump")
    for tool in (bench, dump):
        if not os.access(tool, os.X_OK):
            sys.exit("profile.py: %s is not built" % tool)

    work = tempfile.mkdtemp(prefix="ringlb-profile.")
    try:
        profile(args, bench, dump, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def profile(args, bench, dump, work):
    data = os.path.join(work, "perf.data")
    record = subprocess.Popen(
        ["perf", "record", "-q", "-e", "cpu-clock", "-F", "25000", "-C", "1", "-o", data,
         "--", "sleep", str(args.seconds + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = subprocess.Popen(
        ["taskset", "-c", "1", bench, "--benchmark_filter=BM_Warm_%s/" % args.row,
         "--benchmark_min_time=%g" % args.seconds],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # While the row runs, its programs are loaded: find ours and read its image.
    time.sleep(min(2.5, args.seconds / 2))
    images = []
    for prog in json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show"])):
        if prog.get("name") == args.program:
            image = os.path.join(work, "image.%d" % prog["id"])
            if subprocess.run([dump, str(prog["id"]), image, image + ".lines"]).returncode == 0:
                images.append(image)
    output, _ = run.communicate()
    record.wait()
    if run.returncode != 0 or "ERROR" in output or "BM_Warm_%s/manual_time" % args.row not in output:
        sys.exit("profile.py: the bench row failed or does not exist:\n" + output)
    if not images:
        sys.exit("profile.py: no loaded program named %s" % args.program)

    script = subprocess.check_output(["perf", "script", "-i", data, "-F", "ip,sym,symoff"],
                                     text=True, stderr=subprocess.DEVNULL)
    ours = collections.Counter()
    others = collections.Counter()
    pattern = re.compile(r"bpf_prog_[0-9a-f]+_%s\+0x([0-9a-f]+)" % re.escape(args.program))
    for line in script.splitlines():
        m = pattern.search(line)
        if m:
            ours[int(m.group(1), 16)] += 1
        else:
            fields = line.split()
            others[fields[1].split("+")[0] if len(fields) > 1 else "?"] += 1

    # Several programs of that name may be loaded (the bench loads two ringlb_xdp): the
    # one whose instruction boundaries hold the samples is the one that ran.
    best = None
    for image in images:
        listing = subprocess.check_output(
            ["objdump", "-D", "-b", "binary", "-mi386:x86-64", image], text=True)
        insns = {}
        for l in listing.splitlines():
            m = re.match(r"\s+([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(.*)", l)
            if m:
                insns[int(m.group(1), 16)] = m.group(3)
        hits = sum(c for off, c in ours.items() if off in insns)
        if best is None or hits > best[0]:
            best = (hits, image, insns)
    _, image, insns = best
    starts, sources = [], []
    for l in open(image + ".lines"):
        off, src = l.split()
        starts.append(int(off))
        sources.append(src)
    order = sorted(range(len(starts)), key=lambda i: starts[i])
    starts = [starts[i] for i in order]
    sources = [sources[i] for i in order]

    def source_of(off):
        i = bisect.bisect_right(starts, off) - 1
        return sources[i] if i >= 0 else "?"

    by_line = collections.Counter()
    for off, c in ours.items():
        by_line[source_of(off)] += c
    total = sum(ours.values())
    if total == 0:
        sys.exit("profile.py: no samples in %s" % args.program)
    wrapper = sum(c for s, c in others.items() if re.match(r"bpf_prog_[0-9a-f]+_restore$", s))
    with open(args.out, "w") as out:
        for off in sorted(insns):
            out.write("%6d %5x  %-44s %s\n" % (ours.get(off, 0), off, insns[off], source_of(off)))
    print("%s: %d samples in %s, %d in the wrapper (ratio %.3f); annotated image in %s" %
          (args.row, total, args.program, wrapper, total / wrapper if wrapper else 0, args.out))
    if wrapper * 10 < total:
        # Seen once: perf had not resolved the wrapper's symbol for most of its samples.
        print("warning: few wrapper samples; the ratio is not comparable, run again")
    for src, c in by_line.most_common(30):
        print("%6d %5.1f%%  %s" % (c, 100.0 * c / total, src))
    print("other symbols:")
    for sym, c in others.most_common(8):
        print("%6d  %s" % (c, sym))


if __name__ == "__main__":
    main()
