"""Clients and measurement: run wrk and iperf3 against a target, hold thousands of
idle connections through it, and measure one target for one round (measure)."""

import errno
import json
import select
import socket
import struct
import time

import common
from balancers import start_balancer
from common import BULK_PORT, HOST, HTTP_PORTS, VIP_PORTS, Interrupted, log
from procs import affinity, cpu_seconds, fd_kinds, rss_kib, tail


def to_ms(v):
    v = v.strip()
    for unit, mul in (("us", 1e-3), ("ms", 1.0), ("s", 1e3), ("m", 60e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * mul
    return float(v)


def parse_wrk(out):
    r = {"requests": None, "rps": None, "p99_ms": None, "errors": 0, "non2xx": 0}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("99%"):
            r["p99_ms"] = to_ms(s.split()[1])
        elif " requests in " in s:
            r["requests"] = int(s.split()[0])
        elif s.startswith("Requests/sec:"):
            r["rps"] = float(s.split()[1])
        elif s.startswith("Socket errors:"):
            r["errors"] = sum(int(x.strip().split()[-1]) for x in s.split(":", 1)[1].split(","))
        elif s.startswith("Non-2xx or 3xx responses:"):
            r["non2xx"] = int(s.split()[-1])
    return r


def run_wrk(procs, args, port, duration, close, cpu_root):
    argv = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{args.connections}",
            f"-d{duration}s", "--latency", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{HOST}:{port}/")
    c0 = cpu_seconds(cpu_root) if cpu_root else None
    rc, out, err = procs.run("wrk", argv, timeout=duration + 30)
    c1 = cpu_seconds(cpu_root) if cpu_root else None
    r = parse_wrk(out)
    if rc != 0 or not r["requests"] or r["rps"] is None:
        raise RuntimeError(f"wrk failed (rc {rc}):\n{out}\n{err}")
    r["cpu_s"] = None if c0 is None else c1 - c0
    return r


def run_iperf(procs, args, port, duration, cpu_root):
    argv = ["taskset", "-c", str(args.client_cpu), "iperf3", "-c", HOST, "-p", str(port),
            "-t", str(duration), "-J", "--connect-timeout", "3000"]
    c0 = cpu_seconds(cpu_root) if cpu_root else None
    rc, out, err = procs.run("iperf3", argv, timeout=duration + 30)
    c1 = cpu_seconds(cpu_root) if cpu_root else None
    try:
        j = json.loads(out)
        s = j["end"]["sum_received"]
        r = {"bytes": s["bytes"], "gbps": s["bits_per_second"] / 1e9}
    except (ValueError, KeyError, TypeError):
        raise RuntimeError(f"iperf3 failed (rc {rc}): {out[-800:]}\n{err[-800:]}")
    r["cpu_s"] = None if c0 is None else c1 - c0
    return r


def established_to(ports):
    """Established TCP sockets whose remote port is one of ports (balancer -> backend)."""
    n = 0
    want = {f"{p:04X}" for p in ports}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split(None, 4)
            if parts[3] == "01" and parts[2].rsplit(":", 1)[1] in want:
                n += 1
    return n


def idle_test(port, n, lb_root, timeout):
    """Open n idle connections to port (in batches), wait until the balancer holds its
    backend connections, and return RSS before/after."""
    time.sleep(0.3)
    base_backend = established_to(HTTP_PORTS)
    rss0 = rss_kib(lb_root)
    ep = select.epoll()
    socks, failed = [], 0
    deadline = time.monotonic() + timeout
    linger0 = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT left behind
    try:
        for start in range(0, n, 500):
            pending = {}
            for _ in range(min(500, n - start)):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
                s.setblocking(False)
                e = s.connect_ex((HOST, port))
                if e not in (0, errno.EINPROGRESS):
                    failed += 1
                    s.close()
                    continue
                pending[s.fileno()] = s
                ep.register(s.fileno(), select.EPOLLOUT)
            while pending and time.monotonic() < deadline:
                for fd, _ev in ep.poll(0.5):
                    s = pending.pop(fd)
                    ep.unregister(fd)
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        failed += 1
                        s.close()
                    else:
                        socks.append(s)
            for s in pending.values():
                failed += 1
                s.close()
            if time.monotonic() >= deadline:
                break
        # the balancer connects to a backend per client; wait until it has them all,
        # or until the count stops growing for 2 s (a balancer out of descriptors)
        backend, last, since = 0, -1, time.monotonic()
        while time.monotonic() < deadline:
            backend = established_to(HTTP_PORTS) - base_backend
            if backend >= len(socks):
                break
            if backend != last:
                last, since = backend, time.monotonic()
            elif time.monotonic() - since > 2.0:
                break
            time.sleep(0.25)
        time.sleep(1.0)
        rss1 = rss_kib(lb_root)
        backend = established_to(HTTP_PORTS) - base_backend
        fds = fd_kinds(lb_root)
    finally:
        for s in socks:
            s.close()
        ep.close()
    time.sleep(0.5)
    return {"clients": len(socks), "failed": failed, "backend_conns": backend,
            "rss_before_kib": rss0, "rss_after_kib": rss1, "fds": fds}



def http_probe(port, timeout=1.0):
    """One HTTP/1.0 request; True when a 200 comes back."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET / HTTP/1.0\r\nHost: e2e\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_serving(port, limit=15.0):
    """Seconds until the target answers again (None: not within limit)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if http_probe(port):
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def measure(target, procs, args, d, notes, rnd):
    """One target, one round. A failing step is noted and the rest still run, so one
    bad sample does not lose the whole run; res["failed"] lists the failed steps."""
    res = {"failed": []}
    lb = None
    cpu_root = None

    def step(name, fn):
        try:
            fn()
            return True
        except Interrupted:
            raise
        except Exception as e:  # noqa: BLE001 - recorded and reported
            first = str(e).strip().splitlines()[:1] or [""]
            notes.append(f"round {rnd} {target}: {name} FAILED: {type(e).__name__}: {first[0]}")
            log(f"  {name} failed: {e}")
            res["failed"].append(name)
            return False

    if target == "direct":
        http_port, bulk_port = HTTP_PORTS[0], BULK_PORT
    else:
        http_port, bulk_port = VIP_PORTS[target]

        def start():
            nonlocal lb, cpu_root
            lb = start_balancer(target, procs, d, args)
            cpu_root = lb.pid
        if not step("start", start):
            if lb:
                procs.stop(lb)
            return res
    try:
        if lb:
            def idle_step():
                idle = idle_test(http_port, args.idle, lb.pid, timeout=30 + args.idle / 500)
                res["idle"] = idle
                held = min(idle["clients"], idle["backend_conns"])  # proxied connections it holds
                if held:
                    res["mem_kib_10k"] = (idle["rss_after_kib"] - idle["rss_before_kib"]) * 10000 / held
                    res["rss_idle_kib"] = idle["rss_after_kib"]
                if rnd == 1:
                    kinds = ", ".join(f"{v} {k}" for k, v in sorted(idle["fds"].items(), key=lambda kv: -kv[1]))
                    notes.append(f"{common.LABELS[target]} descriptors with {idle['clients']} idle clients "
                                 f"connected: {kinds}")
                if idle["failed"] or idle["backend_conns"] < idle["clients"]:
                    notes.append(f"round {rnd} {target}: idle test: {idle['clients']} clients connected, "
                                 f"{idle['failed']} failed, only {idle['backend_conns']} backend "
                                 f"connections held (memory scaled from those)")
                # the idle clients are gone: the balancer must serve again before the load runs
                t = wait_serving(http_port)
                res["serving_again_s"] = t
                if t is None or t > 0.1:
                    notes.append(f"round {rnd} {target}: after the idle test it served again after "
                                 + ("more than 15 s" if t is None else f"{t:.1f} s"))
            step("idle", idle_step)
        if lb and rnd == 1:
            # sampled after the idle test: nginx's master listens before its worker has
            # applied worker_cpu_affinity, so a sample taken at start can miss the pinning
            notes.append(f"{common.LABELS[target]} threads (comm:CPUs): {affinity(lb.pid)}")
        if not args.quick:
            step("warm-up", lambda: run_wrk(procs, args, http_port, 1, False, None))

        def ka_step():
            ka = run_wrk(procs, args, http_port, args.duration, False, cpu_root)
            res["ka"] = ka
            res["ka_rps"] = ka["rps"]
            res["ka_p99_ms"] = ka["p99_ms"]
            if ka["cpu_s"] is not None:
                res["cpu_us_req"] = ka["cpu_s"] * 1e6 / ka["requests"]
        step("keep-alive", ka_step)
        time.sleep(0.3)

        def cc_step():
            cc = run_wrk(procs, args, http_port, args.duration, True, cpu_root)
            res["cc"] = cc
            res["cc_cps"] = cc["rps"]
            if cc["cpu_s"] is not None:
                res["cpu_us_conn"] = cc["cpu_s"] * 1e6 / cc["requests"]
        step("connection-close", cc_step)
        for name in ("ka", "cc"):
            r = res.get(name)
            if r and (r["errors"] or r["non2xx"]):
                notes.append(f"round {rnd} {target} {name}: {r['errors']} socket errors, "
                             f"{r['non2xx']} non-2xx of {r['requests']} requests")
        time.sleep(0.3)

        def bulk_step():
            bulk = run_iperf(procs, args, bulk_port, args.duration, cpu_root)
            res["bulk"] = bulk
            res["bulk_gbps"] = bulk["gbps"]
            if bulk["cpu_s"] is not None and bulk["bytes"]:
                res["cpu_ms_gb"] = bulk["cpu_s"] * 1e3 / (bulk["bytes"] / 1e9)
        step("bulk", bulk_step)
        if lb and lb.poll() is not None:
            notes.append(f"round {rnd} {target}: exited with {lb.returncode} during the round: "
                         f"{tail(lb.logpath, 3).strip()}")
            res["failed"].append("died")
    finally:
        if lb:
            procs.stop(lb)
            time.sleep(0.3)
    return res
