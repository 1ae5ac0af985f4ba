#!/usr/bin/python3
"""Servers of one test-bed backend (python3 stdlib only), on IPv4 and IPv6:

  HTTP  :80  any GET -> "backend=NAME peer=ADDR\\n" (ADDR: the source address
             the backend saw: the balancer's in nat mode, the client's otherwise)
  TCP   :7   echo (long-lived connections welcome)
  UDP   :7   echo, prefixed with "NAME " so the client learns the backend

usage: testbed_server.py NAME
"""

import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1] if len(sys.argv) > 1 else "backend"


class DualStack:
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def peer_of(addr):
    host = addr[0]
    return host[7:] if host.startswith("::ffff:") else host


class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY a keep-alive
    # request waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self):
        body = f"backend={NAME} peer={peer_of(self.client_address)}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HttpServer(DualStack, ThreadingHTTPServer):
    pass


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class EchoServer(DualStack, socketserver.ThreadingTCPServer):
    pass


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(NAME.encode() + b" " + data, self.client_address)


class UdpEchoServer(DualStack, socketserver.ThreadingUDPServer):
    pass


def main():
    servers = [HttpServer(("::", 80), Http), EchoServer(("::", 7), Echo),
               UdpEchoServer(("::", 7), UdpEcho)]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
