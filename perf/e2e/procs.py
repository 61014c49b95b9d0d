"""Processes: start, record and stop every process of the run (Procs), and read a
process tree's CPU time, memory, descriptors and thread affinity from /proc; wait
until a server listens."""

import os
import signal
import socket
import subprocess
import time

from common import CLK_TCK, HOST, log


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
