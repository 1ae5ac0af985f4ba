#!/usr/bin/python3
"""Client side of testbed_test.py; runs inside the test bed's client namespace.
Prints one JSON document on stdout.

  testbed_client.py http VIP PORT COUNT SRC...   COUNT requests, sources round-robin,
                                                 Connection: close; [[src, backend, peer]]
  testbed_client.py udp VIP PORT COUNT SRC...    COUNT datagrams; [[src, backend]]
  testbed_client.py keepalive VIP PORT SRC       one HTTP/1.1 connection: a request now,
                                                 another after each stdin line; a line
                                                 of JSON [backend, peer] per request
Failed requests appear with backend "error: ...". Every socket has a 3 s timeout.
"""

import json
import socket
import sys

TIMEOUT_S = 3


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def parse_body(text):
    fields = dict(kv.split("=", 1) for kv in text.strip().split() if "=" in kv)
    return fields.get("backend", "?"), fields.get("peer", "?")


def read_response(f):
    status = f.readline()
    if not status:
        raise ConnectionError("connection closed")
    length = 0
    while True:
        line = f.readline().strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return f.read(length).decode()


def http_once(vip, port, src):
    with socket.socket(family(vip), socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT_S)
        s.bind((src, 0))
        s.connect((vip, port))
        host = f"[{vip}]" if ":" in vip else vip
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return parse_body(read_response(s.makefile("rb")))


def cmd_http(vip, port, count, sources):
    out = []
    for i in range(count):
        src = sources[i % len(sources)]
        try:
            backend, peer = http_once(vip, port, src)
        except OSError as e:
            backend, peer = f"error: {e}", ""
        out.append([src, backend, peer])
    print(json.dumps(out))


def cmd_udp(vip, port, count, sources):
    out = []
    for i in range(count):
        src = sources[i % len(sources)]
        with socket.socket(family(vip), socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT_S)
            s.bind((src, 0))
            payload = f"ping-{i}".encode()
            try:
                s.sendto(payload, (vip, port))
                data = s.recv(2048)
                name, _, echoed = data.partition(b" ")
                backend = name.decode() if echoed == payload else f"error: bad echo {data!r}"
            except OSError as e:
                backend = f"error: {e}"
        out.append([src, backend])
    print(json.dumps(out))


def cmd_keepalive(vip, port, src):
    s = socket.socket(family(vip), socket.SOCK_STREAM)
    s.settimeout(TIMEOUT_S)
    s.bind((src, 0))
    s.connect((vip, port))
    f = s.makefile("rb")
    host = f"[{vip}]" if ":" in vip else vip
    while True:
        try:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            result = list(parse_body(read_response(f)))
        except OSError as e:
            result = [f"error: {e}", ""]
        print(json.dumps(result), flush=True)
        if not sys.stdin.readline():
            return


def main():
    cmd, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "keepalive":
        return cmd_keepalive(vip, port, sys.argv[4])
    count, sources = int(sys.argv[4]), sys.argv[5:]
    if cmd == "http":
        return cmd_http(vip, port, count, sources)
    if cmd == "udp":
        return cmd_udp(vip, port, count, sources)
    sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
