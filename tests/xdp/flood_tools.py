#!/usr/bin/env python3
"""Helpers of netns_flood_test.sh, run inside the client namespace.

    flood_tools.py hold VIP PORT FIFO SOURCE...
        opens one TCP connection to VIP:PORT from each SOURCE address, sends a line on
        each and prints "SOURCE BACKEND" for each answer; then, each time a line arrives
        on FIFO, does the same again on the same connections ("SOURCE -" when one broke)
        and prints "done" after each round. Exits when FIFO says "quit" or after 120 s.
    flood_tools.py syn VIP PORT COUNT SEED
        sends COUNT TCP SYNs to VIP:PORT from random sources in 172.16.0.0/12 (a raw
        socket, IP_HDRINCL), deterministic for SEED, and prints how many it sent.
"""
import random
import select
import socket
import struct
import sys
import time


def ask(conn, line):
    try:
        conn.sendall(line.encode() + b"\n")
        conn.settimeout(2)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(64)
            if not chunk:
                return "-"
            data += chunk
        return data.decode().strip()
    except OSError:
        return "-"


def hold(vip, port, fifo, sources):
    conns = []
    for source in sources:
        conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.bind((source, 0))
        conn.settimeout(5)
        conn.connect((vip, port))
        conns.append((source, conn))
    deadline = time.monotonic() + 120
    round_no = 0
    with open(fifo, "r") as commands:
        while time.monotonic() < deadline:
            round_no += 1
            for source, conn in conns:
                print(source, ask(conn, "round %d" % round_no), flush=True)
            print("done", flush=True)
            ready, _, _ = select.select([commands], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            command = commands.readline().strip()
            if command in ("", "quit"):
                break


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_flood(vip, port, count, seed):
    rng = random.Random(seed)
    dst = socket.inet_aton(vip)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    sent = 0
    for _ in range(count):
        src = struct.pack("!I", (172 << 24) | (rng.randrange(16, 32) << 16) | rng.randrange(1, 65535))
        sport = rng.randrange(1024, 65535)
        tcp = struct.pack("!HHIIBBHHH", sport, port, rng.randrange(1 << 32), 0, 5 << 4, 0x02, 64240, 0, 0)
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), rng.randrange(65536), 0x4000, 64,
                         socket.IPPROTO_TCP, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        raw.sendto(ip + tcp, (vip, 0))
        sent += 1
    print(sent)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:])
    elif len(sys.argv) == 6 and sys.argv[1] == "syn":
        syn_flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
