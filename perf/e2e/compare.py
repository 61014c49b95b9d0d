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
import errno
import json
import os
import platform
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"
HTTP_PORTS = [19001, 19002, 19003]
BULK_PORT = 19101
VIP_PORTS = {"haproxy": (19201, 19211), "nginx": (19202, 19212), "ringlbd": (19203, 19213),
             "ringlbd2": (19204, 19214)}
# ringlbd2: a second ringlbd variant in the same run (--ringlbd2-args), not run by default
ALL_TARGETS = ["direct", "haproxy", "nginx", "ringlbd", "ringlbd2"]
DEFAULT_TARGETS = ["direct", "haproxy", "nginx", "ringlbd"]
RINGLBDS = ["ringlbd", "ringlbd2"]
LABELS = {"direct": "direct", "haproxy": "HAProxy", "nginx": "nginx stream", "ringlbd": "ringlbd",
          "ringlbd2": "ringlbd2"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY = ("ringlb-e2e " * 10)[:100]  # 100-byte response body
NOFILE = 20000   # RLIMIT_NOFILE every process gets; set in main() from what we could raise
MAXPIPES = 512   # HAProxy pipes (default maxconn/4); 64 wrk connections use at most 128
MAXCONN = 9388   # HAProxy maxconn: 2 fds per connection + 2 per pipe must fit in NOFILE

# metric key, row label, higher is better?, number format, goal for ringlbd/HAProxy
METRICS = [
    ("ka_rps", "keep-alive requests/s", True, "{:,.0f}", ">= 1.2"),
    ("ka_p99_ms", "keep-alive p99 latency (ms)", False, "{:.2f}", ""),
    ("cc_cps", "new connections/s", True, "{:,.0f}", ">= 1.2"),
    ("bulk_gbps", "bulk throughput (Gbit/s)", True, "{:.2f}", ""),
    ("cpu_us_req", "balancer CPU per request (µs)", False, "{:.2f}", "<= 0.7"),
    ("cpu_us_conn", "balancer CPU per connection (µs)", False, "{:.2f}", "<= 0.7"),
    ("cpu_ms_gb", "balancer CPU per GB (ms)", False, "{:.1f}", "<= 0.7"),
    ("mem_kib_10k", "balancer memory per 10k idle conns (KiB)", False, "{:,.0f}", ""),
    ("rss_idle_kib", "balancer RSS holding the idle conns (KiB)", False, "{:,.0f}", ""),
]


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    # First signal aborts the run; the cleanup in finally must not be interrupted again.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(f"signal {signum}")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


def proc_starttime(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


class Procs:
    """Every process we start: own process group (so Ctrl-C goes to us, and nginx's
    workers die with their master), recorded in a pid file that compare.sh's trap
    reads if we die without cleaning up."""

    def __init__(self, state_dir):
        self.pidfile = os.path.join(state_dir, "pids")
        self.live = []

    def _record(self, p, name):
        st = proc_starttime(p.pid) or "0"
        with open(self.pidfile, "a") as f:
            f.write(f"{p.pid} {st} {name}\n")

    def start(self, name, argv, logpath):
        out = open(logpath, "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        out.close()
        p.name = name
        p.logpath = logpath
        self._record(p, name)
        self.live.append(p)
        return p

    def run(self, name, argv, timeout):
        """Run a bounded client to completion; returns (rc, stdout, stderr)."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True, text=True)
        p.name = name
        self._record(p, name)
        self.live.append(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(p)
            out, err = p.communicate()
            err = (err or "") + f"\n[compare] {name} killed after {timeout}s timeout"
            return -1, out, err
        finally:
            if p.returncode is not None and p in self.live:
                self.live.remove(p)
        return p.returncode, out, err

    def stop(self, p, grace=5.0):
        if p in self.live:
            self.live.remove(p)
        if p.poll() is None:  # not reaped: the pid (and our group id) is still ours
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # stragglers of the group (e.g. nginx workers), then the leader if it ignored TERM
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log(f"warning: {p.name} (pid {p.pid}) did not exit")

    def stop_all(self):
        for p in list(reversed(self.live)):
            self.stop(p)


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(root):
    """root and all its descendants (nginx master + workers)."""
    kids = children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def cpu_seconds(root):
    """utime+stime of every process of the tree; /proc/<pid>/stat sums all threads
    (io-wq workers included) of a process."""
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK_TCK


def rss_kib(root):
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def fd_kinds(root):
    """Open descriptors of the tree by kind (socket, pipe, anon_inode:[io_uring], ...)."""
    kinds = {}
    for pid in tree(root):
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in names:
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            k = t.split(":", 1)[0] if not t.startswith("anon_inode:") else t
            k = "file" if k.startswith("/") else k
            kinds[k] = kinds.get(k, 0) + 1
    return kinds


def affinity(root):
    """CPUs allowed per thread of the tree, for the record."""
    res = {}
    for pid in tree(root):
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    cpus = [l.split()[1] for l in f if l.startswith("Cpus_allowed_list")][0]
                res.setdefault(f"{comm}:{cpus}", 0)
                res[f"{comm}:{cpus}"] += 1
        except (OSError, IndexError):
            pass
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(res.items()))


def port_open(port):
    s = socket.socket()
    s.settimeout(0.3)
    try:
        s.connect((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def wait_listening(p, ports, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{p.name} exited with {p.returncode} at start:\n{tail(p.logpath)}")
        if all(port_open(x) for x in ports):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{p.name} not listening on {ports} after {timeout}s:\n{tail(p.logpath)}")


# ---------------------------------------------------------------- configs


def nginx_backend_conf(d, i, port):
    return f"""# ringlb e2e backend {i}: tiny static response
worker_processes 1;
worker_rlimit_nofile {NOFILE};
pid {d}/backend{i}.pid;
error_log {d}/backend{i}.err warn;
events {{ worker_connections {min(16384, NOFILE - 100)}; }}
http {{
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    client_body_temp_path {d}/tmp{i}/body;
    proxy_temp_path {d}/tmp{i}/proxy;
    fastcgi_temp_path {d}/tmp{i}/fastcgi;
    uwsgi_temp_path {d}/tmp{i}/uwsgi;
    scgi_temp_path {d}/tmp{i}/scgi;
    server {{
        listen {HOST}:{port} backlog=4096;
        location / {{
            default_type text/plain;
            return 200 "{BODY}";
        }}
    }}
}}
"""


def haproxy_conf(d, http_vip, bulk_vip, splice="force"):
    splice_opts = {"force": "    option splice-request\n    option splice-response\n",
                   "auto": "    option splice-auto\n", "off": ""}[splice]
    servers = "\n".join(f"    server b{i + 1} {HOST}:{p}" for i, p in enumerate(HTTP_PORTS))
    return f"""# ringlb e2e: HAProxy, TCP mode, one thread on CPU 0, splice forced both ways.
# 'cpu-map 1/1 0' is silently ignored by HAProxy 2.6 with nbthread 1: 1/all pins it.
global
    nbthread 1
    cpu-map 1/all 0
    maxconn {MAXCONN}
    maxpipes {MAXPIPES}
    log stderr format raw local0 err
defaults
    mode tcp
    log global
{splice_opts}    timeout connect 5s
    timeout client 120s
    timeout server 120s
    maxconn {MAXCONN}
frontend fe_http
    bind {HOST}:{http_vip} backlog 4096
    default_backend be_http
backend be_http
    balance roundrobin
{servers}
frontend fe_bulk
    bind {HOST}:{bulk_vip}
    default_backend be_bulk
backend be_bulk
    server bulk1 {HOST}:{BULK_PORT}
"""


def nginx_lb_conf(d, http_vip, bulk_vip):
    servers = "\n".join(f"        server {HOST}:{p};" for p in HTTP_PORTS)
    return f"""# ringlb e2e: nginx stream proxy, one worker on CPU 0, round robin
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile {NOFILE};
pid {d}/nginx-lb.pid;
error_log {d}/nginx-lb.err warn;
events {{ worker_connections {NOFILE - 100}; }}
stream {{
    upstream be_http {{
{servers}
    }}
    upstream be_bulk {{
        server {HOST}:{BULK_PORT};
    }}
    server {{
        listen {HOST}:{http_vip} backlog=4096;
        proxy_pass be_http;
    }}
    server {{
        listen {HOST}:{bulk_vip};
        proxy_pass be_bulk;
    }}
}}
"""


def ringlbd_conf(d, http_vip, bulk_vip):
    backends = "".join(f'\n[[vip.backend]]\nname = "b{i + 1}"\naddress = "{HOST}:{p}"\n'
                       for i, p in enumerate(HTTP_PORTS))
    return f"""# ringlb e2e: one worker (pinned to CPU 0), round robin
[daemon]
workers = 1
control_dir = "{d}/ringlb-control"

[[vip]]
name = "http"
listen = "{HOST}:{http_vip}"
policy = "round_robin"
{backends}
[[vip]]
name = "bulk"
listen = "{HOST}:{bulk_vip}"
policy = "round_robin"

[[vip.backend]]
name = "bulk1"
address = "{HOST}:{BULK_PORT}"
"""


def default_ringlbd():
    """The daemon's build path: src/daemon/ since the control plane, src/proxy/ before."""
    paths = [os.path.join(REPO, "build/src", sub, "ringlbd") for sub in ("daemon", "proxy")]
    return next((p for p in paths if os.access(p, os.X_OK)), paths[0])


def proxy_dirty():
    r = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src/proxy", "src/daemon"],
                       capture_output=True, text=True)
    return bool(r.stdout.strip())


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def start_balancer(name, procs, d, args):
    http_vip, bulk_vip = VIP_PORTS[name]
    logpath = os.path.join(d, f"{name}.log")
    if name == "haproxy":
        cfg = write(os.path.join(d, "haproxy.cfg"), haproxy_conf(d, http_vip, bulk_vip, args.haproxy_splice))
        argv = ["haproxy", "-f", cfg, "-db"]
    elif name == "nginx":
        cfg = write(os.path.join(d, "nginx-lb.conf"), nginx_lb_conf(d, http_vip, bulk_vip))
        argv = ["nginx", "-c", cfg, "-p", d + "/", "-e", os.path.join(d, "nginx-lb.err"),
                "-g", "daemon off;"]
    else:
        cfg = write(os.path.join(d, f"{name}.toml"), ringlbd_conf(d, http_vip, bulk_vip))
        extra = args.ringlbd_args if name == "ringlbd" else args.ringlbd2_args
        argv = [args.ringlbd, "--config", cfg] + shlex.split(extra)
    p = procs.start(name, argv, logpath)
    wait_listening(p, [http_vip, bulk_vip])
    return p


# ---------------------------------------------------------------- clients


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


# ---------------------------------------------------------------- one target


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
                    notes.append(f"{LABELS[target]} descriptors with {idle['clients']} idle clients "
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
            notes.append(f"{LABELS[target]} threads (comm:CPUs): {affinity(lb.pid)}")
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


# ---------------------------------------------------------------- report


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def build_table(targets, med):
    cols = [LABELS[t] for t in targets]
    ratios = ["ringlbd"] + [t for t in targets if t == "ringlbd2"]
    header = ["metric"] + cols + [f"{LABELS[t]} / HAProxy" for t in ratios] + ["goal"]
    rows = []
    for key, label, _hib, fmt, goal in METRICS:
        row = [label]
        for t in targets:
            v = med.get(t, {}).get(key)
            row.append("-" if v is None else fmt.format(v))
        for t in ratios:
            r, h = med.get(t, {}).get(key), med.get("haproxy", {}).get(key)
            row.append(f"{r / h:.2f}x" if r is not None and h else "-")
        row.append(goal or "")
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    right = [False] + [True] * (len(header) - 1)

    def fmt_row(r):
        cells = [c.rjust(w) if ra else c.ljust(w) for c, w, ra in zip(r, widths, right)]
        return "| " + " | ".join(cells) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if ra else "-" * w for w, ra in zip(widths, right)) + " |"
    return "\n".join([fmt_row(header), sep] + [fmt_row(r) for r in rows])


def draw_chart(path, targets, med, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        log(f"chart skipped: {e}")
        return False
    h = med.get("haproxy", {})
    shown = [t for t in targets if t not in ("haproxy", "direct")]  # direct would flatten the scale
    colors = {"direct": "#9e9e9e", "nginx": "#2e7d32", "ringlbd": "#1565c0", "ringlbd2": "#6a1b9a"}
    fig, ax = plt.subplots(figsize=(11, 5.2))
    n = max(1, len(shown))
    width = 0.8 / n
    xs = range(len(METRICS))
    for i, t in enumerate(shown):
        vals = []
        for key, *_ in METRICS:
            v = med.get(t, {}).get(key)
            vals.append(v / h[key] if v is not None and h.get(key) else 0.0)
        pos = [x - 0.4 + width * (i + 0.5) for x in xs]
        bars = ax.bar(pos, vals, width, label=LABELS[t], color=colors.get(t))
        for b, v in zip(bars, vals):
            if v:
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="#c62828", linewidth=1.2, label="HAProxy = 1")
    for x, (key, _l, _hib, _f, goal) in zip(xs, METRICS):
        if goal:
            g = float(goal.split()[1])
            ax.hlines(g, x - 0.45, x + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.plot([], [], color="black", linestyle="dashed", label="ringlbd goal")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([textwrap.fill(l, 18) + f"\n({'higher' if hib else 'lower'} is better)"
                        for _k, l, hib, _f, _g in METRICS], fontsize=7)
    ax.set_ylabel("ratio to HAProxy (median of rounds)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)
    return True


# ---------------------------------------------------------------- main


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
    if args.ringlbd2_args is not None and "ringlbd2" not in targets:
        targets.append("ringlbd2")
    if "ringlbd2" in targets and args.ringlbd2_args is None:
        ap.error("target ringlbd2 needs --ringlbd2-args")
    targets = [t for t in ALL_TARGETS if t in targets]  # canonical order
    if args.ringlbd_args:
        LABELS["ringlbd"] = f"ringlbd {args.ringlbd_args}"
    if args.ringlbd2_args is not None:
        LABELS["ringlbd2"] = f"ringlbd {args.ringlbd2_args}".strip()
    chart = args.chart or (os.path.join(args.out, "chart.png") if args.quick else os.path.join(HERE, "chart.png"))

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # A balancer needs 2 fds per idle client connection. Raising the hard limit needs
    # CAP_SYS_RESOURCE, which a container may lack: then the idle test uses fewer
    # connections and scales the result to 10k.
    global NOFILE, MAXCONN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    MAXCONN = (NOFILE - 200 - 2 * MAXPIPES) // 2
    fit = min((NOFILE - 1000) // 2, MAXCONN - 100) // 1000 * 1000
    if args.idle > fit:
        if idle_given:
            sys.exit(f"compare: --idle {args.idle} needs RLIMIT_NOFILE >= {2 * args.idle + 1000}, have {NOFILE}")
        log(f"RLIMIT_NOFILE is {NOFILE} (hard limit, cannot raise): idle test uses {fit} "
            f"connections instead of {args.idle}, scaled to 10k")
        args.idle = fit
    if fit < 100:
        sys.exit(f"compare: RLIMIT_NOFILE {NOFILE} is too low")

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
                notes.append(f"{LABELS[t]} {label}: median of {n} of {len(per_round)} rounds (the others failed)")
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
