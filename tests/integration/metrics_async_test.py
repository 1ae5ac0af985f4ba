#!/usr/bin/python3
"""/metrics does not block the event loop on the dataplane's port statistics
(issue 10): the control plane runs against a stand-in for the dataplane's
telemetry socket (the PATH.telemetry link) that first answers /sluice/ports
and /sluice/port,0 like sluice-dataplane, then accepts connections and never
answers (a dataplane that is stopped or wedged). While two clients scrape
/metrics in a loop:

  * every scrape answers fast, with the last known sluice_port_* values,
    sluice_port_stats_up 0 and a growing sluice_port_stats_age_seconds;
  * `sluicectl status` answers fast, and `sluicectl ports` too, with the last
    known values marked stale;
  * a health-checked backend killed meanwhile is taken out within
    interval x fall + timeout (+300 ms), as without scrapers;
  * when the stand-in answers again, sluice_port_stats_up is 1 with new values.

usage: metrics_async_test.py SLUICE_CONTROLPLANE SLUICECTL
No root needed. Exit 0 pass, 1 fail. About 10 s.
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_util import check, failures  # noqa: E402
from cp_robustness_test import FALL, INTERVAL, TIMEOUT, daemon, http_backend  # noqa: E402


class fake_telemetry:
    """A SOCK_SEQPACKET server speaking the DPDK telemetry protocol for the two
    port commands; `silent` makes it accept and read but never answer."""

    def __init__(self, path):
        self.path, self.silent, self.packets = path, False, 1000
        self.held = []
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(path)
        self.lsock.listen(64)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.silent:
                self.held.append(c)  # never greeted, never answered
                continue
            threading.Thread(target=self.answer, args=(c,), daemon=True).start()

    def answer(self, c):
        try:
            c.send(json.dumps({"version": "DPDK 22.11", "pid": os.getpid(),
                               "max_output_len": 16384}).encode())
            cmd = c.recv(1024).decode()
            if cmd == "/sluice/ports":
                body = {"ports": [0]}
            else:
                body = {"port": 0, "name": "net_fake0", "driver": "net_fake", "role": "port",
                        "stats": {"ipackets": self.packets, "opackets": self.packets},
                        "q_ipackets": [self.packets], "q_opackets": [self.packets]}
            c.send(json.dumps({cmd.split(",")[0]: body}).encode())
        except OSError:
            pass
        c.close()

    def close(self):
        self.lsock.close()
        for c in self.held:
            c.close()


def scrape(port, timeout=5):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    body = b""
    while chunk := s.recv(65536):
        body += chunk
    s.close()
    return time.monotonic() - t0, body.decode(errors="replace")


def metric(text, prefix):
    for line in text.splitlines():
        if line.startswith(prefix) and line[len(prefix)] in " {,":
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    cp_bin, ctl_bin = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="sluice-masync-")
    inst = f"masync{os.getpid()}"
    backend = http_backend()
    d = daemon(cp_bin, ctl_bin, work, inst, backend.port)
    link = d.shm + ".telemetry"
    tel = fake_telemetry(os.path.join(work, "telemetry.sock"))
    os.symlink(tel.path, link)
    try:
        if not check(d.start(), "control plane up"):
            print(d.log())
            return 1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            took, m = scrape(d.mport)
            if metric(m, "sluice_port_stats_up") == 1:
                break
            time.sleep(0.1)
        check(metric(m, "sluice_port_stats_up") == 1 and
              metric(m, 'sluice_port_rx_packets_total{port="0"') == 1000 and
              metric(m, "sluice_port_stats_age_seconds") is not None and
              metric(m, "sluice_port_stats_age_seconds") < 1,
              f"answering dataplane: fresh port values in the scrape ({took:.2f} s)")

        tel.silent = True
        stop = threading.Event()
        lat, bodies = [], []

        def scraper():
            while not stop.is_set():
                try:
                    t, b = scrape(d.mport)
                except OSError:
                    t, b = 99, ""
                lat.append(t)
                bodies.append(b)

        threads = [threading.Thread(target=scraper, daemon=True) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.5)

        def state():
            r = d.ctl("--json", "backend", "list", "web")
            if r.returncode != 0:
                return None
            return json.loads(r.stdout)["backends"][0].get("effective_state")

        t0 = time.monotonic()
        st = d.ctl("status")
        took = time.monotonic() - t0
        check(st.returncode == 0 and took < 0.5,
              f"status answered in {took:.2f} s while the dataplane does not answer scrapes")
        t0 = time.monotonic()
        pr = d.ctl("ports")
        took = time.monotonic() - t0
        check(pr.returncode == 0 and took < 0.5 and
              "did not answer the latest query" in pr.stdout,
              f"ports answered in {took:.2f} s with the last known values marked stale: "
              f"{pr.stdout.splitlines()[:1]} {pr.stderr.strip()}")
        check(state() == "up", "web backend up before the kill")
        backend.kill()
        t0 = time.monotonic()
        limit = (INTERVAL * FALL + TIMEOUT + 300) / 1000
        down = None
        while time.monotonic() - t0 < limit + 3:
            if state() == "down":
                down = time.monotonic() - t0
                break
            time.sleep(0.02)
        check(down is not None and down <= limit,
              f"killed backend taken out after {down and round(down * 1000)} ms "
              f"(limit {limit * 1000:.0f} ms) while scrapes meet a silent dataplane")
        stop.set()
        for t in threads:
            t.join(10)
        lat_sorted = sorted(lat)
        med = lat_sorted[len(lat_sorted) // 2] if lat else 99
        slow = [x for x in lat if x > 0.3]
        check(len(lat) >= 10 and med < 0.1 and len(slow) <= 1,
              f"{len(lat)} scrapes: median {med * 1000:.0f} ms, "
              f"{len(slow)} over 300 ms (at most the first may wait 200 ms)")
        last = bodies[-1] if bodies else ""
        check(metric(last, "sluice_port_stats_up") == 0 and
              metric(last, 'sluice_port_rx_packets_total{port="0"') == 1000 and
              (metric(last, "sluice_port_stats_age_seconds") or 0) > 1,
              "silent dataplane: up 0, last known values, age over 1 s: " +
              " ".join(l for l in last.splitlines() if l.startswith("sluice_port_stats")))

        tel.silent, tel.packets = False, 2000
        deadline = time.monotonic() + 5
        m = ""
        while time.monotonic() < deadline:
            _, m = scrape(d.mport)
            if metric(m, "sluice_port_stats_up") == 1:
                break
            time.sleep(0.2)
        check(metric(m, "sluice_port_stats_up") == 1 and
              metric(m, 'sluice_port_rx_packets_total{port="0"') == 2000,
              "answering again: up 1 with new values")
        check(d.proc.poll() is None, "daemon alive")
    finally:
        d.stop()
        tel.close()
        for p in (d.shm, d.shm + ".lock", d.shm + ".saved", link):
            if os.path.lexists(p):
                os.unlink(p)
        if failures:
            print("---- control plane log ----")
            print(d.log()[-6000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
