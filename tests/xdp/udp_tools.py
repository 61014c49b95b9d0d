#!/usr/bin/env python3
"""Helpers of netns_fragment_test.sh: UDP datagrams large enough to be fragmented.

    udp_tools.py serve NAME ADDR PORT
        answers every datagram on ADDR:PORT with "NAME LENGTH SHA256" of what arrived
        (reassembled by the kernel); runs until killed.
    udp_tools.py ask VIP PORT SIZE SOURCE...
        from each SOURCE address sends one datagram of SIZE bytes (its content depends on
        SOURCE and SIZE) to VIP:PORT and prints "SOURCE BACKEND OK" when the answer names
        the datagram's length and digest, "SOURCE BACKEND BAD" when it does not, and
        "SOURCE - NONE" when three tries, a second apart, got no answer.
    udp_tools.py tunnel TO INNER_SOURCE VIP PORT COUNT
        sends COUNT IPIP packets to TO (outer source: this host's address toward TO), each
        holding a UDP datagram from INNER_SOURCE to VIP:PORT, as a host that is no balancer
        might to inject spoofed traffic; prints how many it sent.
"""
import hashlib
import socket
import struct
import sys


def serve(name, addr, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    while True:
        data, peer = sock.recvfrom(65535)
        digest = hashlib.sha256(data).hexdigest()
        sock.sendto(f"{name} {len(data)} {digest}".encode(), peer)


def payload(source, size):
    seed = f"{source}/{size}/".encode()
    block = hashlib.sha256(seed).digest() * 2
    return (block * (size // len(block) + 1))[:size]


def ask(vip, port, size, sources):
    for source in sources:
        data = payload(source, size)
        want = f"{len(data)} {hashlib.sha256(data).hexdigest()}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.settimeout(1)
        answer = None
        for _ in range(3):
            sock.sendto(data, (vip, port))
            try:
                answer = sock.recv(512).decode().split(" ", 1)
                break
            except socket.timeout:
                continue
        sock.close()
        if answer is None or len(answer) != 2:
            print(f"{source} - NONE", flush=True)
        else:
            print(f"{source} {answer[0]} {'OK' if answer[1] == want else 'BAD'}", flush=True)


def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tunnel(to, inner_source, vip, port, count):
    payload_bytes = b"spoofed"
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload_bytes), 0) + payload_bytes
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64,
                         socket.IPPROTO_UDP, 0, socket.inet_aton(inner_source),
                         socket.inet_aton(vip))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
    sent = 0
    for _ in range(count):
        sock.sendto(header + udp, (to, 0))
        sent += 1
    print(sent)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 7 and sys.argv[1] == "tunnel":
        tunnel(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif len(sys.argv) >= 6 and sys.argv[1] == "ask":
        ask(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
