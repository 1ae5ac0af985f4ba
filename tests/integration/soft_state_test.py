#!/usr/bin/python3
"""Response-time hints reach the workers through the shared backend soft-state
array without a new table generation (issue 10), end to end on loopback with
the real control plane (no root):

Two HTTP backends of a least-response-time service answer their health checks
after 5 ms and 80 ms. Once both hints are known, the test reads the shared
memory object directly (layout from common/shm_abi.h) and checks that each
backend's soft `rtt` word carries its published incarnation and the hint the
control plane reports. Then the two latencies swap: the hints follow in the
soft words, `sluice_soft_state_updates_total` / status `publish.soft_updates`
grow, and the generation (status and the object's header) and the publication
count do not move. (tests/packet/pipeline_scheduler_test.cc shows the worker
pipeline following such words with the generation unchanged.)

usage: soft_state_test.py SLUICE_CONTROLPLANE SLUICECTL
Exit 0 pass, 1 fail. About 10 s.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_util import check, failures  # noqa: E402


class delayed_http:
    """Loopback HTTP server answering 200 after `delay` seconds."""

    def __init__(self, delay):
        self.delay = delay
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.lsock.listen(64)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(c,), daemon=True).start()

    def answer(self, c):
        try:
            c.settimeout(2)
            c.recv(4096)
            time.sleep(self.delay)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
        c.close()

    def close(self):
        self.lsock.close()


def soft_words(shm):
    """{port: (incarnation in the table, rtt word's incarnation, rtt value)}
    for the in-use backends of the published slot."""
    with open(shm, "rb") as f:
        head = f.read(512)
        max_services, max_backends = struct.unpack_from("<II", head, 24)
        slot_off = struct.unpack_from("<QQ", head, 64)
        soft_off = struct.unpack_from("<Q", head, 112)[0]
        gen = struct.unpack_from("<Q", head, 192)[0]
        base = slot_off[gen & 1] + 64 + max_services * 128  # slot_header, service_entry[]
        out = {}
        for i in range(max_backends):
            f.seek(base + i * 64)
            e = f.read(64)
            port, = struct.unpack_from("<H", e, 16)
            inc, flags = struct.unpack_from("<II", e, 24)
            if not flags & 1:
                continue
            f.seek(soft_off + i * 32)
            rtt, = struct.unpack("<Q", f.read(8))
            out[port] = (inc, rtt >> 32, rtt & 0xffffffff)
        return gen, out


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    cp_bin, ctl_bin = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="sluice-soft-")
    inst = f"soft{os.getpid()}"
    shm = f"/dev/shm/sluice-{inst}"
    sock = os.path.join(work, "api.sock")
    fast, slow = delayed_http(0.005), delayed_http(0.080)
    cp = None
    try:
        hc = ("{check: http, path: /, interval_ms: 100, timeout_ms: 1000, rise: 1, fall: 3, "
              "jitter_pct: 0}")
        cfg = os.path.join(work, "sluice.yaml")
        open(cfg, "w").write(
            f"instance: {inst}\nservices:\n  - name: web\n    vip: 192.0.2.10\n    port: 80\n"
            f"    mode: nat\n    scheduler: least-response-time\n    health: {hc}\n"
            f"    backends:\n      - {{address: 127.0.0.1, port: {fast.port}}}\n"
            f"      - {{address: 127.0.0.1, port: {slow.port}}}\n")
        log_path = os.path.join(work, "cp.log")
        cp = subprocess.Popen([cp_bin, "--config", cfg, "--shm-path", shm, "--socket", sock,
                               "--state-file", os.path.join(work, "state.yaml"),
                               "--metrics", "off", "--ack-timeout-ms", "200"],
                              stdout=open(log_path, "w"), stderr=subprocess.STDOUT)

        def api(cmd, **kw):
            r = subprocess.run([ctl_bin, "--socket", sock, "--json", *cmd], capture_output=True,
                               text=True, timeout=20)
            return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}

        def hints():
            bs = api(["backend", "list", "web"]).get("backends", [])
            return {b["port"]: b.get("rtt_hint_us", 0) for b in bs}

        def wait_for(pred, limit):
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                h = hints()
                if pred(h):
                    return h
                time.sleep(0.1)
            return hints()

        def match(words, h):
            return all(p in words and words[p][0] == words[p][1] and words[p][2] == h.get(p)
                       for p in (fast.port, slow.port))

        def matching_words():
            # A hint may move between reading the object and asking the daemon.
            for _ in range(20):
                gen, words = soft_words(shm)
                h = hints()
                if match(words, h):
                    break
                time.sleep(0.1)
            return gen, words, h

        h = wait_for(lambda h: h.get(fast.port, 0) and h.get(slow.port, 0) and
                     h[fast.port] * 3 < h[slow.port], 10)
        check(h.get(fast.port, 0) and h.get(slow.port, 0) and h[fast.port] * 3 < h[slow.port],
              f"health checks give hints: fast {h.get(fast.port)} us, slow {h.get(slow.port)} us")
        st0 = api(["status"])
        gen0, words, h = matching_words()
        check(match(words, h), f"soft rtt words carry the incarnation and the hint: {words} vs {h}")

        fast.delay, slow.delay = 0.080, 0.005
        h = wait_for(lambda h: h.get(slow.port, 0) * 3 < h.get(fast.port, 0), 10)
        check(h.get(slow.port, 0) * 3 < h.get(fast.port, 0),
              f"hints follow the swap: {h}")
        gen1, words, h = matching_words()
        st1 = api(["status"])
        check(match(words, h) and words[fast.port][2] > 3 * words[slow.port][2],
              f"soft rtt words follow: {words} vs {h}")
        p0, p1 = st0.get("publish", {}), st1.get("publish", {})
        check(st0.get("generation") == st1.get("generation") and gen0 == gen1 and
              p0.get("count") == p1.get("count"),
              f"no new generation: status {st0.get('generation')} -> {st1.get('generation')}, "
              f"shm {gen0} -> {gen1}, publications {p0.get('count')} -> {p1.get('count')}")
        check(p1.get("soft_updates", 0) > p0.get("soft_updates", 0) > 0,
              f"soft-state updates counted: {p0.get('soft_updates')} -> "
              f"{p1.get('soft_updates')}")
        check(cp.poll() is None, "control plane alive")
    finally:
        if cp and cp.poll() is None:
            cp.terminate()
            try:
                cp.wait(5)
            except subprocess.TimeoutExpired:
                cp.kill()
        fast.close()
        slow.close()
        for p in (shm, shm + ".lock", shm + ".saved"):
            if os.path.lexists(p):
                os.unlink(p)
        if failures:
            print("---- control plane log ----")
            print(open(os.path.join(work, "cp.log"), errors="replace").read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
