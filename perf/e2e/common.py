"""Shared settings of the end-to-end comparison: paths, ports, targets and their
labels, the table's metrics, descriptor limits, log() and the signal handling.

main() (compare.py) changes some of these at run time: it sets NOFILE and MAXCONN
from the descriptor limit it could raise, and relabels the ringlbd targets in LABELS.
Other modules therefore read those as common.NOFILE, common.MAXCONN and common.LABELS
when they run, never through 'from common import ...'.
"""

import os
import signal
import sys
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
# main() relabels ringlbd and ringlbd2 with their options
LABELS = {"direct": "direct", "haproxy": "HAProxy", "nginx": "nginx stream", "ringlbd": "ringlbd",
          "ringlbd2": "ringlbd2"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY = ("ringlb-e2e " * 10)[:100]  # 100-byte response body
NOFILE = 20000   # RLIMIT_NOFILE every process gets; set in main() from what we could raise
MAXPIPES = 512   # HAProxy pipes (default maxconn/4); 64 wrk connections use at most 128
MAXCONN = 9388   # HAProxy maxconn: 2 fds per connection + 2 per pipe must fit in NOFILE;
                 # set in main() from NOFILE

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
