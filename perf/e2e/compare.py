#!/usr/bin/env python3
"""End-to-end comparison of ringlbd with HAProxy and nginx's stream proxy.

Driven by compare.sh (which raises the fd limit and kills every recorded process
group on exit). Everything runs on loopback on this machine:

  backends   3 nginx (tiny static response) on 127.0.0.1:19001..19003,
             1 iperf3 server on 127.0.0.1:19101
  targets    direct (client -> backend 19001), haproxy, nginx (stream), ringlbd
  per target and round
             idle   10,000 idle connections through the balancer: RSS delta
             ka     wrk keep-alive: requests/s, p99, balancer CPU per request
             cc     wrk 'Connection: close': connections/s, CPU per connection
             bulk   iperf3 through the balancer: Gbit/s, CPU per GB
Rounds are interleaved (round 1: every target, round 2: every target, ...) and the
table shows the median over rounds.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time

# The sibling modules, whatever the cwd (compare.sh runs this file as a script).
_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

import common  # noqa: E402 - needs the path above
from balancers import default_ringlbd, nginx_backend_conf, proxy_dirty, write  # noqa: E402
from clients import measure  # noqa: E402
from common import (ALL_TARGETS, BODY, BULK_PORT, DEFAULT_TARGETS, HERE, HOST,  # noqa: E402
                    HTTP_PORTS, METRICS, REPO, RINGLBDS, VIP_PORTS, Interrupted, log, on_signal)
from procs import Procs, port_open, wait_listening  # noqa: E402
from report import build_table, draw_chart, median  # noqa: E402


def main():
    ap = argparse.ArgumentParser(prog="compare.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk/iperf3 run")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 round, 1-second runs, 1000 idle connections")
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                    help=f"comma-separated, from {','.join(ALL_TARGETS)}")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    ap.add_argument("--chart", default=None,
                    help="PNG path (default perf/e2e/chart.png; with --quick: OUT/chart.png)")
    ap.add_argument("--idle", type=int, default=None, help="idle connections (default 10000)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU of wrk and iperf3 clients")
    ap.add_argument("--haproxy-splice", choices=["force", "auto", "off"], default="force",
                    help="HAProxy splice options: force (splice-request + splice-response, "
                         "issue 3's baseline), auto (splice-auto) or off")
    ap.add_argument("--backend-cpu", default=None,
                    help="pin the nginx backends and the iperf3 server to these CPUs (taskset list); "
                         "default: not pinned")
    ap.add_argument("--ringlbd", default=default_ringlbd(),
                    help="the daemon (default: build/src/daemon/ringlbd, else build/src/proxy/ringlbd)")
    ap.add_argument("--ringlbd-args", default="", help="extra ringlbd options, e.g. '--pump splice'")
    ap.add_argument("--ringlbd2-args", default=None,
                    help="options of a second ringlbd variant, measured as target ringlbd2 "
                         "(added to the targets when given)")
    ap.add_argument("--ringlbd2", default=None,
                    help="the daemon of target ringlbd2 (default: --ringlbd), e.g. an older "
                         "build to compare against (added to the targets when given)")
    ap.add_argument("--ringlbd-daemon", default="",
                    help="TOML lines added to ringlbd's [daemon] table; {dir} is the run's "
                         "directory, e.g. 'access_log = \"{dir}/access.log\"'")
    ap.add_argument("--ringlbd2-daemon", default="",
                    help="the same for target ringlbd2 (with --ringlbd2-args '' it measures "
                         "one setting against the default in the same run)")
    ap.add_argument("--state-dir", required=True, help=argparse.SUPPRESS)
    args = ap.parse_args()
    idle_given = args.idle is not None
    if args.quick:
        args.rounds, args.duration = 1, 1
        if args.idle is None:
            args.idle = 1000
    if args.idle is None:
        args.idle = 10000
    if args.rounds < 1 or args.duration < 1 or args.idle < 1:
        ap.error("--rounds, --duration and --idle must be positive")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in targets if t not in ALL_TARGETS]
    if bad or not targets:
        ap.error(f"unknown target(s) {bad}; choose from {','.join(ALL_TARGETS)}")
    if (args.ringlbd2_args is not None or args.ringlbd2) and "ringlbd2" not in targets:
        targets.append("ringlbd2")
    if args.ringlbd2 and args.ringlbd2_args is None:
        args.ringlbd2_args = args.ringlbd_args
    if "ringlbd2" in targets and args.ringlbd2_args is None:
        ap.error("target ringlbd2 needs --ringlbd2-args or --ringlbd2")
    targets = [t for t in ALL_TARGETS if t in targets]  # canonical order
    if args.ringlbd_args:
        common.LABELS["ringlbd"] = f"ringlbd {args.ringlbd_args}"
    if args.ringlbd2_args is not None:
        common.LABELS["ringlbd2"] = f"ringlbd {args.ringlbd2_args}".strip()
    if args.ringlbd2:
        common.LABELS["ringlbd2"] = f"{args.ringlbd2} {args.ringlbd2_args}".strip()
    if args.ringlbd2_daemon:
        common.LABELS["ringlbd2"] += " [" + args.ringlbd2_daemon.replace("\n", "; ") + "]"
    chart = args.chart or (os.path.join(args.out, "chart.png") if args.quick else os.path.join(HERE, "chart.png"))

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # A balancer needs 2 fds per idle client connection. Raising the hard limit needs
    # CAP_SYS_RESOURCE, which a container may lack: then the idle test uses fewer
    # connections and scales the result to 10k.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    common.NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    common.MAXCONN = (common.NOFILE - 200 - 2 * common.MAXPIPES) // 2
    fit = min((common.NOFILE - 1000) // 2, common.MAXCONN - 100) // 1000 * 1000
    if args.idle > fit:
        if idle_given:
            sys.exit(f"compare: --idle {args.idle} needs RLIMIT_NOFILE >= {2 * args.idle + 1000}, have {common.NOFILE}")
        log(f"RLIMIT_NOFILE is {common.NOFILE} (hard limit, cannot raise): idle test uses {fit} "
            f"connections instead of {args.idle}, scaled to 10k")
        args.idle = fit
    if fit < 100:
        sys.exit(f"compare: RLIMIT_NOFILE {common.NOFILE} is too low")

    notes = []
    skipped = {}
    for t in RINGLBDS:
        if t in targets and not os.access(args.ringlbd, os.X_OK):
            msg = (f"{t} SKIPPED: {args.ringlbd} is not built "
                   f"(build it: cmake --build build --target ringlbd); no {t} figures in this run")
            log(msg)
            skipped[t] = msg
            targets.remove(t)

    ringlbd_info = ""
    if any(t in targets for t in RINGLBDS):
        # one run, one build: the binary can be rebuilt while a run is going on
        snap = os.path.join(args.state_dir, "ringlbd")
        shutil.copy2(args.ringlbd, snap)
        mtime = datetime.datetime.fromtimestamp(os.stat(args.ringlbd).st_mtime, datetime.timezone.utc)
        head = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h", "--", "src/proxy", "src/daemon"],
                              capture_output=True, text=True).stdout.strip() or "?"
        ringlbd_info = (f"; ringlbd built {mtime.strftime('%H:%M UTC')} "
                        f"(last src/proxy+src/daemon commit {head}{', tree modified' if proxy_dirty() else ''})")
        args.ringlbd = snap
    if args.ringlbd2:
        snap2 = os.path.join(args.state_dir, "ringlbd2")
        shutil.copy2(args.ringlbd2, snap2)
        args.ringlbd2 = snap2
    else:
        args.ringlbd2 = args.ringlbd

    busy = [p for p in HTTP_PORTS + [BULK_PORT] + [x for t in targets if t in VIP_PORTS for x in VIP_PORTS[t]]
            if port_open(p)]
    if busy:
        sys.exit(f"compare: ports already in use on {HOST}: {busy} (another run?)")

    d = os.path.join(args.state_dir, "run")
    os.makedirs(d, exist_ok=True)
    for i in range(1, 4):
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, f"tmp{i}", sub), exist_ok=True)
    procs = Procs(args.state_dir)
    per_round = []
    started = time.monotonic()
    failed = None
    try:
        pin = ["taskset", "-c", args.backend_cpu] if args.backend_cpu else []
        log(f"backends: nginx on {HOST}:{HTTP_PORTS[0]}..{HTTP_PORTS[-1]}, iperf3 on {HOST}:{BULK_PORT}")
        for i, port in enumerate(HTTP_PORTS, 1):
            cfg = write(os.path.join(d, f"backend{i}.conf"), nginx_backend_conf(d, i, port))
            p = procs.start(f"backend{i}", pin + ["nginx", "-c", cfg, "-p", d + "/", "-e",
                                            os.path.join(d, f"backend{i}.err"), "-g", "daemon off;"],
                            os.path.join(d, f"backend{i}.log"))
            wait_listening(p, [port])
        p = procs.start("iperf3-server", pin + ["iperf3", "-s", "-B", HOST, "-p", str(BULK_PORT)],
                        os.path.join(d, "iperf3-server.log"))
        wait_listening(p, [BULK_PORT])
        rc, out, _ = procs.run("curl", ["curl", "-sS", "-m", "5", f"http://{HOST}:{HTTP_PORTS[0]}/"], 10)
        if rc != 0 or out != BODY:
            raise RuntimeError(f"backend check failed: rc {rc}, body {out!r}")

        for rnd in range(1, args.rounds + 1):
            row = {}
            for t in targets:
                log(f"round {rnd}/{args.rounds}: {t}")
                row[t] = measure(t, procs, args, d, notes, rnd)
                brief = ", ".join(f"{k}={row[t][k]:.4g}" for k, *_ in METRICS if row[t].get(k) is not None)
                log(f"  {brief}")
            per_round.append(row)
    except Interrupted as e:
        failed = f"interrupted ({e})"
    except Exception as e:  # report what we have, then fail
        failed = f"{type(e).__name__}: {e}"
    finally:
        procs.stop_all()
        os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
        for f in os.listdir(d):
            if f.endswith((".log", ".err", ".conf", ".cfg", ".toml")):
                shutil.copy(os.path.join(d, f), os.path.join(args.out, "logs", f))

    if failed:
        log(f"FAILED: {failed}")
        log(f"logs and configs: {os.path.join(args.out, 'logs')}")
        if not per_round:
            return 1

    med = {t: {k: median([r[t].get(k) for r in per_round if t in r]) for k, *_ in METRICS} for t in targets}
    incomplete = []
    for t in targets:
        for k, label, *_ in METRICS:
            if t == "direct" and k in ("cpu_us_req", "cpu_us_conn", "cpu_ms_gb", "mem_kib_10k", "rss_idle_kib"):
                continue
            n = sum(1 for r in per_round if r.get(t, {}).get(k) is not None)
            if n == 0:
                incomplete.append(f"{t}: {label}")
            elif n < len(per_round):
                notes.append(f"{common.LABELS[t]} {label}: median of {n} of {len(per_round)} rounds (the others failed)")
    if incomplete and not failed:
        failed = "no value in any round for " + "; ".join(incomplete)
    table = build_table([t for t in ALL_TARGETS if t in targets or t in skipped], med)
    elapsed = time.monotonic() - started
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shown_argv = [a for a in sys.argv[1:] if not a.startswith("--state-dir") and a != args.state_dir]
    cmd = "perf/e2e/compare.sh " + shlex.join(shown_argv)
    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    meta = (f"{now}; {os.cpu_count()} CPUs ({model}), Linux {platform.release()}; "
            f"{len(per_round)} round(s) interleaved, medians; {args.duration} s per run; "
            f"wrk -t1 -c{args.connections} and iperf3 on CPU {args.client_cpu}; balancers on CPU 0; "
            f"{args.idle} idle connections (memory scaled to 10k); HAProxy splice: {args.haproxy_splice}; backends on CPU {args.backend_cpu or 'any'}{ringlbd_info}; run took {elapsed:.0f} s")
    print()
    print(table)
    print()
    for n in list(skipped.values()) + notes:
        print(f"- {n}")

    os.makedirs(args.out, exist_ok=True)
    md = [f"# ringlb end-to-end comparison", "", f"Command: `{cmd.strip()}`", "", meta, "", table, "",
          "Ratios are ringlbd's median over HAProxy's median from the same run. Goals (issue 3): "
          "requests/s and connections/s >= 1.2x HAProxy; CPU per request, per connection and per GB "
          "<= 0.7x HAProxy.", ""]
    if failed:
        md += [f"**Run incomplete: {failed}**", ""]
    if skipped or notes:
        md += ["Notes:", ""] + [f"- {n}" for n in list(skipped.values()) + notes] + [""]
    md += ["Per round:", "", "| round | target | " + " | ".join(k for k, *_ in METRICS) + " |",
           "| --- | --- | " + " | ".join("---:" for _ in METRICS) + " |"]
    for i, r in enumerate(per_round, 1):
        for t in targets:
            if t in r:
                md.append(f"| {i} | {t} | " + " | ".join(
                    "-" if r[t].get(k) is None else f"{r[t][k]:.4g}" for k, *_ in METRICS) + " |")
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "command": cmd.strip(), "targets": targets, "skipped": skipped,
                   "notes": notes, "failed": failed, "median": med, "rounds": per_round}, f, indent=1)
    log(f"wrote {os.path.join(args.out, 'latest.md')} and results.json")
    if failed and args.chart is None and not args.quick:
        chart = os.path.join(args.out, "chart.png")  # keep the committed chart for complete runs
    if "haproxy" in targets and len(targets) > 1:
        title = (f"ringlb e2e, ratio to HAProxy (median of {len(per_round)} interleaved round(s), "
                 f"{args.duration} s runs, {now})")
        if draw_chart(chart, targets, med, title):
            log(f"wrote {chart}")
    if failed:
        log(f"INCOMPLETE: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
