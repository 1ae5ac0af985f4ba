#!/usr/bin/python3
"""The control plane survives hostile and careless input (issue 10), each case
reproducing an input that once crashed, stalled or emptied it, then asserting
that the daemon still answers `sluicectl status` and that nothing changed:

  * invalid UTF-8 on the API socket and in config strings (health checks);
  * a request nested 8,500 levels deep, 10 MB of '[', YAML alias bombs (file
    and API), a 50 MB config, two YAML documents, a non-boolean dry_run, a
    100 KB health.path;
  * a /metrics client sending a byte every 0.9 s while a health-checked
    backend dies: still taken out within interval x fall + timeout;
  * 40 API clients each leaving 5 MiB without a newline (memory bounded,
    extra clients refused); the descriptor limit reached (no busy loop);
    sluicectl against a daemon that never answers (bounded by its timeouts);
  * damaged state files (empty, comment only, '---', 'services: []',
    truncated): refused, previous good one or --config used, loudly; a sealed
    state with zero services over a non-empty config needs --allow-empty;
  * a symlinked lock file (root must not follow it); shared memory owned by
    another user with mode 0666 (root only);
  * SIGHUP reloads --config all-or-nothing; SIGTERM removes the socket.

  * with SLUICE_DATAPLANE (root): a stopped worker is reported stalled in
    status, metrics and the log (the scrape does not wait for the stopped
    dataplane's port statistics), and a zombie dataplane counts as dead.

usage: cp_robustness_test.py SLUICE_CONTROLPLANE SLUICECTL [SLUICE_DATAPLANE]
No root needed (the foreign-owner shared-memory and heartbeat cases are
skipped without it). Exit 0 pass, 1 fail. About 45 s.
"""

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_util import check, failures, run  # noqa: E402

INTERVAL, TIMEOUT, FALL = 100, 200, 2


class http_backend:
    """A loopback HTTP server answering 200 until stopped (listener closed)."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.lsock.listen(16)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                c.settimeout(1)
                c.recv(4096)
                c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass
            c.close()

    def kill(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in serve()
        except OSError:
            pass
        self.lsock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class daemon:
    def __init__(self, cp_bin, ctl_bin, work, inst, backend_port):
        self.cp_bin, self.ctl_bin, self.work, self.inst = cp_bin, ctl_bin, work, inst
        self.shm = f"/dev/shm/sluice-{inst}"
        self.sock = os.path.join(work, "api.sock")
        self.state = os.path.join(work, "state.yaml")
        self.cfg = os.path.join(work, "sluice.yaml")
        self.log_path = os.path.join(work, "cp.log")
        self.mport = free_port()
        self.proc = None
        hc = (f"{{check: http, path: /healthz, interval_ms: {INTERVAL}, timeout_ms: {TIMEOUT}, "
              f"rise: 2, fall: {FALL}, jitter_pct: 0}}")
        self.config_text = (
            f"instance: {inst}\nservices:\n"
            f"  - name: web\n    vip: 192.0.2.10\n    port: 80\n    health: {hc}\n"
            f"    backends:\n      - {{address: 127.0.0.1, port: {backend_port}}}\n"
            f"  - {{name: dns, vip: 192.0.2.10, port: 53, proto: udp, "
            f"backends: [{{address: 10.0.0.2}}]}}\n")
        self.write_config(self.config_text)

    def write_config(self, text):
        with open(self.cfg, "w") as f:
            f.write(text)

    def start(self, *extra, nofile=None, expect_up=True):
        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(
            [self.cp_bin, "--config", self.cfg, "--shm-path", self.shm, "--socket", self.sock,
             "--state-file", self.state, "--metrics", f"127.0.0.1:{self.mport}",
             "--ack-timeout-ms", "200", *extra],
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT, preexec_fn=limit)
        if not expect_up:
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                return None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(self.sock) and self.ctl("status").returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def ctl(self, *args, timeout=20, env=None):
        return run([self.ctl_bin, "--socket", self.sock, *args], timeout=timeout, env=env)

    def raw(self, data, timeout=10):
        """Sends bytes on a fresh API connection; returns the first answer line."""
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(timeout)
        c.connect(self.sock)
        try:
            c.sendall(data)
        except OSError:
            pass
        buf = b""
        try:
            while b"\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
        c.close()
        line = buf.split(b"\n")[0]
        try:
            return json.loads(line)
        except ValueError:
            return {"raw": line[:200]}

    def api(self, req, timeout=10):
        return self.raw((json.dumps(dict(req, version=1)) + "\n").encode(), timeout)

    def config(self):
        return self.api({"cmd": "config.get"}).get("config")

    def log(self):
        return open(self.log_path, errors="replace").read()

    def rss_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return -1

    def cpu_s(self):
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def alive_and_unchanged(d, before, what):
    t0 = time.monotonic()
    st = d.ctl("status")
    took = time.monotonic() - t0
    check(d.proc.poll() is None and st.returncode == 0 and took < 2,
          f"{what}: daemon alive, status answered in {took:.2f} s")
    check(d.config() == before, f"{what}: config unchanged")


def bad_api_input(d, before):
    a = d.raw(b"\xff\n")
    check(a.get("ok") is False and "UTF-8" in a.get("error", ""),
          f"invalid UTF-8 request refused: {a.get('error')!r}")
    alive_and_unchanged(d, before, "invalid UTF-8")

    deep = ('{"version":1,"cmd":"service.add","service":' + "[" * 8500 + "]" * 8500 + "}\n")
    a = d.raw(deep.encode())
    check(a.get("ok") is False and "deeper than 64" in a.get("error", ""),
          f"8,500-deep request refused: {a.get('error')!r}")
    alive_and_unchanged(d, before, "deep nesting")

    t0 = time.monotonic()
    a = d.raw(b"[" * (10 << 20) + b"\n", timeout=20)
    took = time.monotonic() - t0
    check(a.get("ok") is False and took < 5,
          f"10 MB of '[' refused in {took:.1f} s: {a.get('error')!r}")
    alive_and_unchanged(d, before, "10 MB of '['")

    a = d.api({"cmd": "apply", "yaml": open(d.cfg).read(), "dry_run": "yes"})
    check(a.get("ok") is False and "dry_run" in a.get("error", "") and
          "internal" not in a.get("error", ""), f"non-boolean dry_run: {a.get('error')!r}")

    bomb = alias_bomb()
    t0 = time.monotonic()
    a = d.api({"cmd": "apply", "yaml": bomb}, timeout=30)
    took = time.monotonic() - t0
    check(a.get("ok") is False and "alias" in a.get("error", "") and took < 2,
          f"{len(bomb)} B alias bomb through apply refused in {took:.2f} s")
    check(len(a.get("error", "")) < 2000, "one short error, not a million lines")
    alive_and_unchanged(d, before, "alias bomb (API)")

    t0 = time.monotonic()  # yaml-cpp 0.7 loops without bound on this (found by fuzz_config)
    a = d.api({"cmd": "apply", "yaml": ", and\ninstance: edge1\n"}, timeout=30)
    check(a.get("ok") is False and "cannot start with ','" in a.get("error", "") and
          time.monotonic() - t0 < 2, f"leading-comma YAML refused: {a.get('error')!r}")
    a = d.api({"cmd": "apply", "yaml": open(d.cfg).read() + "---\nservices: []\n"})
    check(a.get("ok") is False and "second YAML document" in a.get("error", ""),
          f"second YAML document refused: {a.get('error')!r}")
    a = d.api({"cmd": "service.add", "service": {
        "name": "x", "vip": "192.0.2.99", "port": 81,
        "health": {"check": "http", "path": "/" + "a" * 100000}}})
    check(a.get("ok") is False and "longer than 4096 bytes" in a.get("error", ""),
          f"100 KB health.path refused: {a.get('error', '')[:80]!r}")
    svc = {"name": "x", "vip": "192.0.2.99", "port": 81,
           "health": {"check": "http", "path": "/\udcff"}}
    a = d.raw((json.dumps({"version": 1, "cmd": "service.add", "service": svc},
                          ensure_ascii=True) + "\n").encode())
    check(a.get("ok") is False, f"lone surrogate in a health path refused: {a.get('error')!r}")
    alive_and_unchanged(d, before, "bad API input")


def alias_bomb():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("services: [*a9]")
    text = "\n".join(lines) + "\n"
    return text + "#" * max(0, 10000 - len(text) - 1) + "\n"


def bad_config_files(d, work):
    def validate(name, text, expect, limit_s=3):
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        t0 = time.monotonic()
        r = run([d.cp_bin, "--validate", "--config", path], timeout=120)
        took = time.monotonic() - t0
        check(r.returncode == 1 and expect in r.stderr and took < limit_s and
              len(r.stderr) < 20000,
              f"--validate {name}: refused in {took:.2f} s with '{expect}' "
              f"({r.stderr.strip().splitlines()[0][:100] if r.stderr.strip() else ''})")

    hc = d.config_text.replace("path: /healthz", "path: \"/\xff\"")
    validate("utf8.yaml", hc.encode("latin-1"), "not valid UTF-8")
    validate("bomb.yaml", alias_bomb(), "alias")
    validate("two-docs.yaml", d.config_text + "---\nservices: []\n", "second YAML document")
    validate("long-path.yaml", d.config_text.replace("/healthz", "/" + "p" * 100000),
             "longer than 4096 bytes")
    big = "services:\n" + "".join(
        f"  - {{name: s{i}, vip: 192.0.2.{i % 250 + 1}, port: {i % 60000 + 1}}}\n"
        for i in range(800000))
    validate("big.yaml", big, "a config may hold")


def slow_metrics_and_dead_backend(d, backend):
    """A scrape trickling one byte every 0.9 s must not delay health checks."""
    stop = threading.Event()

    def trickle():
        s = socket.create_connection(("127.0.0.1", d.mport))
        for ch in b"GET /metrics HTTP/1.0\r\n\r\n":
            if stop.is_set():
                break
            try:
                s.send(bytes([ch]))
            except OSError:
                s = socket.create_connection(("127.0.0.1", d.mport))
            time.sleep(0.9)
        s.close()

    for _ in range(3):
        threading.Thread(target=trickle, daemon=True).start()
    time.sleep(1)

    def state():
        r = d.ctl("--json", "backend", "list", "web")
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["backends"][0].get("effective_state")

    check(state() == "up", "web backend up before the kill")
    t0 = time.monotonic()
    st = d.ctl("status")
    check(st.returncode == 0 and time.monotonic() - t0 < 1,
          f"status answered in {time.monotonic() - t0:.2f} s while scrapes trickle")
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
          f"(limit {limit * 1000:.0f} ms) with slow /metrics clients")
    stop.set()
    s = socket.create_connection(("127.0.0.1", d.mport), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    body = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    check(b"200 OK" in body and b"sluice_table_generation" in body, "a normal scrape still works")


def many_clients(d, before):
    rss0 = d.rss_mb()
    clients, refused = [], 0
    chunk = b"x" * (1 << 20)
    for i in range(40):
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(5)
        c.connect(d.sock)
        clients.append(c)
    time.sleep(0.2)
    for c in clients:
        try:
            for _ in range(5):
                c.sendall(chunk)
        except OSError:
            refused += 1
    time.sleep(0.5)
    rss = d.rss_mb()
    check(rss - rss0 < 150, f"40 clients x 5 MiB without newline: RSS {rss0:.0f} -> {rss:.0f} MB")
    alive_and_unchanged(d, before, "40 clients holding 5 MiB each")
    for c in clients:
        c.close()


def descriptor_limit(d, before):
    """The daemon at its descriptor limit: no busy loop, back when clients leave."""
    held = []
    for _ in range(80):
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(d.sock)
        except OSError:
            pass
        held.append(c)
    time.sleep(0.5)
    cpu0 = d.cpu_s()
    time.sleep(2)
    cpu = d.cpu_s() - cpu0
    check(cpu < 0.6, f"at the descriptor limit: {cpu:.2f} s CPU in 2 s (no EMFILE busy loop)")
    r = d.ctl("status", env=dict(os.environ, SLUICECTL_TIMEOUT_S="3"), timeout=30)
    check(r.returncode != 0 or "instance" in r.stdout, "sluicectl bounded at the limit")
    for c in held:
        c.close()
    time.sleep(0.3)
    alive_and_unchanged(d, before, "after the descriptor limit")
    check("out of file descriptors" in d.log(), "EMFILE logged")


def ctl_timeouts(d, work):
    path = os.path.join(work, "hung.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(0)  # never accepts
    t0 = time.monotonic()
    r = run([d.ctl_bin, "--socket", path, "status"], timeout=60,
            env=dict(os.environ, SLUICECTL_TIMEOUT_S="2"))
    took = time.monotonic() - t0
    check(r.returncode != 0 and took < 8, f"sluicectl against a daemon that never answers: "
          f"gave up after {took:.1f} s ({r.stderr.strip()[:90]})")
    fill = []
    for _ in range(4):  # fill the backlog: connect itself would block
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(path)
        except OSError:
            pass
        fill.append(c)
    t0 = time.monotonic()
    r = run([d.ctl_bin, "--socket", path, "status"], timeout=60)
    took = time.monotonic() - t0
    check(r.returncode != 0 and took < 8,
          f"sluicectl connect to a full backlog gave up after {took:.1f} s")
    for c in fill:
        c.close()
    ls.close()


def state_files(d, before):
    # Two changes, so that the last good file (PATH.prev) exists.
    d.ctl("backend", "set-weight", "dns", "10.0.0.2", "2")
    d.ctl("backend", "set-weight", "dns", "10.0.0.2", "1")
    d.stop()
    check(os.path.exists(d.state + ".prev"), "the previous state file is kept as .prev")
    good = open(d.state).read()
    check(good.rstrip().splitlines()[-1].startswith("# sluice-state-end bytes="),
          "state file sealed with an end marker")
    n = len(before["services"])
    truncated = "\n".join(good.splitlines()[:6]) + "\n"
    for i, (name, text) in enumerate([("empty", ""), ("comment-only", "# nothing\n"), ("doc-marker", "---\n"),
                       ("no-services", "services: []\n"), ("truncated", truncated)]):
        with open(d.state, "w") as f:
            f.write(text)
        up = d.start()
        st = d.api({"cmd": "status"})
        check(up and st.get("services") == n,
              f"state file '{name}' refused: {st.get('services')} services (want {n})")
        check(d.log().count(f"{d.state}.prev found") == i + 1,
              f"'{name}': the last good file (.prev) used")
        check("WARNING: state file refused" in d.log(), f"'{name}': loud warning logged")
        d.stop()
    # A sealed state with zero services over a non-empty config.
    d.start()
    for s in ("web", "dns"):
        d.ctl("service", "del", s)
    d.stop()
    r = d.start(expect_up=False)
    check(r == 1 and "--allow-empty" in d.log(), "zero-service state over a non-empty config: "
          "start refused, --allow-empty suggested")
    up = d.start("--allow-empty")
    check(up and d.api({"cmd": "status"}).get("services") == 0, "--allow-empty starts empty")
    d.stop()
    os.unlink(d.state)
    up = d.start()
    check(up and d.config() == before, "config restored for the next cases")


def lock_and_shm(d, work):
    d.stop()
    victim = os.path.join(work, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    lock = d.shm + ".lock"
    if os.path.exists(lock):
        os.unlink(lock)
    os.symlink(victim, lock)
    r = d.start(expect_up=False)
    check(r == 1 and open(victim).read() == "precious\n" and "symbolic link" in d.log(),
          "symlinked lock file refused, its target untouched")
    os.unlink(lock)
    if os.geteuid() == 0:
        os.rename(d.shm, d.shm + ".saved")
        with open(d.shm, "wb") as f:
            f.write(b"\0" * 4096)
        os.chown(d.shm, 65534, 65534)
        os.chmod(d.shm, 0o666)
        r = d.start(expect_up=False)
        check(r == 1 and "owned by uid 65534" in d.log(),
              "shared memory owned by another user (0666) refused")
        os.unlink(d.shm)
        os.rename(d.shm + ".saved", d.shm)
    else:
        print("note: not root; the foreign-owner shared-memory case is skipped")
    check(d.start(), "restarts normally afterwards")


def heartbeats(d, dp_bin):
    """A stopped worker is reported stalled (status, metrics, log) and back
    when it runs; a zombie dataplane counts as dead."""
    dp = subprocess.Popen(
        [dp_bin, "-l", "0,1", "--no-pci", "--file-prefix", d.inst, "--log-level", "*:warning",
         "--no-huge", "-m", "512", "--no-shconf", "--vdev", "net_null0", "--", "--port", "0",
         "--shm-path", d.shm, "--instance", d.inst, "--addr", "192.0.2.1/24",
         "--flow-table-size", "65536"],
        stdout=open(os.path.join(d.work, "dp.log"), "w"), stderr=subprocess.STDOUT)
    try:
        def status():
            return d.api({"cmd": "status"})

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not status().get("workers"):
            time.sleep(0.1)
        st = status()
        check(st.get("workers") and st["workers"][0]["heartbeat_age_s"] < 0.5 and
              not st["stalled_workers"], f"worker heartbeat fresh: {st.get('workers')}")
        dp.send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        st = status()
        check(st.get("stalled_workers") == [0] and st["workers"][0]["stalled"],
              f"stopped worker reported stalled: {st.get('workers')}")
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", d.mport), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = b""
        while chunk := s.recv(65536):
            body += chunk
        took = time.monotonic() - t0
        check(b'sluice_worker_stalled{worker="0"} 1' in body, "metrics: sluice_worker_stalled 1")
        # The stopped dataplane does not answer port statistics: the scrape
        # waits at most 200 ms for them (the telemetry timeout is 500 ms).
        check(took < 0.45 and b"sluice_port_stats_up 0" in body,
              f"scrape of a stopped dataplane answered in {took:.2f} s, port stats down")
        check("worker 0 stalled" in d.log(), "stall logged")
        dp.send_signal(signal.SIGCONT)
        time.sleep(0.5)
        check(status().get("stalled_workers") == [], "running again after SIGCONT")
        dp.send_signal(signal.SIGKILL)  # not reaped yet: a zombie
        time.sleep(0.5)
        state = open(f"/proc/{dp.pid}/stat").read().rsplit(")", 1)[1].split()[0]
        check(state == "Z" and status().get("dataplane", {}).get("alive") is False,
              f"zombie dataplane (state {state}) reported dead")
    finally:
        if dp.poll() is None:
            dp.kill()
        dp.wait()


def signals(d, before):
    d.write_config(d.config_text.replace("address: 10.0.0.2", "address: 10.0.0.3"))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "SIGHUP: reloaded" not in d.log():
        time.sleep(0.05)
    cfg = d.config()
    check(d.proc.poll() is None and cfg != before and "10.0.0.3" in json.dumps(cfg),
          "SIGHUP reloaded the config (logged)")
    now = cfg
    d.write_config("services: [\n")
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "is invalid, nothing changed" not in d.log():
        time.sleep(0.05)
    check("is invalid, nothing changed" in d.log(), "SIGHUP with a broken config: logged")
    alive_and_unchanged(d, now, "SIGHUP with a broken config")
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(5)
    check(rc == 0 and not os.path.exists(d.sock), "SIGTERM: clean exit, socket removed")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    cp_bin, ctl_bin = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    dp_bin = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
    work = tempfile.mkdtemp(prefix="sluice-cprob-")
    inst = f"cprob{os.getpid()}"
    backend = http_backend()
    d = daemon(cp_bin, ctl_bin, work, inst, backend.port)
    try:
        if not check(d.start(nofile=40), "control plane up"):
            print(d.log())
            return 1
        before = d.config()
        bad_api_input(d, before)
        bad_config_files(d, work)
        many_clients(d, before)
        descriptor_limit(d, before)  # then health checks must still work (below)
        ctl_timeouts(d, work)
        slow_metrics_and_dead_backend(d, backend)
        state_files(d, before)
        lock_and_shm(d, work)
        if dp_bin and os.geteuid() == 0:
            heartbeats(d, dp_bin)
        else:
            print("note: no dataplane or not root; worker heartbeats not tested")
        signals(d, before)
    finally:
        d.stop()
        for p in (d.shm, d.shm + ".lock", d.shm + ".saved"):
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
