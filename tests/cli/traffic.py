#!/usr/bin/env python3
"""Loopback traffic for the CLI tests.

  traffic.py serve NAME PORT       a backend: sends "NAME\\n", then echoes until EOF
  traffic.py send PORT N BYTES [SOURCE...]
      N connections to 127.0.0.1:PORT (round-robin over SOURCE addresses, bound before
      connect), each sending BYTES bytes then EOF and reading to EOF; prints
      "SOURCE BACKEND" per connection. Exit 1 if any reply is not name + the bytes sent.
"""
import socket
import sys
import threading


def serve(name, port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(512)

    def handle(conn):
        with conn:
            conn.sendall(name.encode() + b"\n")
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def send(port, count, size, sources):
    payload = bytes(i % 251 for i in range(size))
    ok = True
    for i in range(count):
        source = sources[i % len(sources)] if sources else "127.0.0.1"
        s = socket.socket()
        s.settimeout(5)
        if sources:
            s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
        s.close()
        name, _, echoed = got.partition(b"\n")
        if echoed != payload:
            print(f"connection {i}: got {len(echoed)} bytes back, sent {size}", file=sys.stderr)
            ok = False
        print(source, name.decode())
    return ok


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "send":
        sys.exit(0 if send(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]) else 1)
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
