"""Balancer configurations (HAProxy, nginx stream, ringlbd) and the nginx backends'
configuration; start a balancer; find the ringlbd binary."""

import os
import shlex
import subprocess

import common
from common import BODY, BULK_PORT, HOST, HTTP_PORTS, REPO, VIP_PORTS
from procs import wait_listening


def nginx_backend_conf(d, i, port):
    return f"""# ringlb e2e backend {i}: tiny static response
worker_processes 1;
worker_rlimit_nofile {common.NOFILE};
pid {d}/backend{i}.pid;
error_log {d}/backend{i}.err warn;
events {{ worker_connections {min(16384, common.NOFILE - 100)}; }}
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
    maxconn {common.MAXCONN}
    maxpipes {common.MAXPIPES}
    log stderr format raw local0 err
defaults
    mode tcp
    log global
{splice_opts}    timeout connect 5s
    timeout client 120s
    timeout server 120s
    maxconn {common.MAXCONN}
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
worker_rlimit_nofile {common.NOFILE};
pid {d}/nginx-lb.pid;
error_log {d}/nginx-lb.err warn;
events {{ worker_connections {common.NOFILE - 100}; }}
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


def ringlbd_conf(d, http_vip, bulk_vip, daemon_extra=""):
    backends = "".join(f'\n[[vip.backend]]\nname = "b{i + 1}"\naddress = "{HOST}:{p}"\n'
                       for i, p in enumerate(HTTP_PORTS))
    return f"""# ringlb e2e: one worker (pinned to CPU 0), round robin
[daemon]
workers = 1
control_dir = "{d}/ringlb-control"
{daemon_extra.replace("{dir}", d)}

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
        daemon = args.ringlbd_daemon if name == "ringlbd" else args.ringlbd2_daemon
        cfg = write(os.path.join(d, f"{name}.toml"), ringlbd_conf(d, http_vip, bulk_vip, daemon))
        extra = args.ringlbd_args if name == "ringlbd" else args.ringlbd2_args
        binary = args.ringlbd if name == "ringlbd" else args.ringlbd2
        argv = [binary, "--config", cfg] + shlex.split(extra)
    p = procs.start(name, argv, logpath)
    wait_listening(p, [http_vip, bulk_vip])
    return p
