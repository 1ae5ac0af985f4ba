#!/usr/bin/python3
"""Three Sluice instances behind an ECMP router (scripts/testbed-ecmp.sh), DSR
(dsr-ipip) with the same config everywhere:

  * every instance announces the VIP by BGP (BIRD), the router installs three
    next hops; `sluicectl peers` shows both peers up with equal table digests;
  * long-lived TCP echo connections spread over the instances while a prober
    opens new connections: kill -9 one instance (dataplane, control plane and
    BIRD at once): BFD takes it out of the router's route (the time is printed
    and bounded), no held connection breaks (Maglev agrees across instances),
    new connections fail only in the detection window; the instance comes back
    and is announced again, still nothing breaks;
  * `sluicectl instance drain` withdraws at once (undrain re-announces), with
    no broken connection;
  * active-passive: one instance announces with a longer AS path (backup) and
    takes over when the active one is killed, then hands back.

usage: ecmp_failover_test.py SLUICE_CONTROLPLANE SLUICECTL
       ecmp_failover_test.py --client hold|probe ...  (inside the client namespace)
Exit 0 pass, 1 fail, 77 skip (not root, bird or binaries missing).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from itest_util import check, failures, run

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(REPO, "scripts", "testbed-ecmp.sh")
PY = "/usr/bin/python3"
PREFIX = f"ec{os.getpid() % 10000}"
STATE = f"/run/sluice-testbed-ecmp-{PREFIX}"
VIP = "192.0.2.10"
SRC4 = [f"203.0.113.{i}" for i in (10, 11, 12, 13)]
LB = {n: f"198.51.100.{20 + n}" for n in (1, 2, 3)}
HELD = 90  # long-lived connections (the 300 costs too much CI time on 2 cores)


# ------------------------------------------------------- client-namespace side

def hold(n, stop_file, out_file, stall_s=5.0):
    """n echo connections, each sending a line every 100 ms until stop_file
    exists; a connection that errs or stalls stall_s seconds is broken. The
    longest pause between two answered lines of any connection is reported."""
    broken, rounds, lock = [], [0], threading.Lock()
    max_stall = [0.0]
    socks = []
    for i in range(n):
        try:
            s = socket.create_connection((VIP, 7), timeout=5,
                                         source_address=(SRC4[i % len(SRC4)], 0))
            s.settimeout(stall_s)
            socks.append(s)
        except OSError as e:
            broken.append({"conn": i, "t": time.time(), "error": f"connect: {e}"})

    def loop(i, s):
        msg = f"conn {i} ".encode() + b"x" * 32 + b"\n"
        last = time.time()
        while not os.path.exists(stop_file):
            try:
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(len(msg) - len(got))
                    if not chunk:
                        raise OSError("closed by peer")
                    got += chunk
                if got != msg:
                    raise OSError(f"echo mismatch {got[:20]!r}")
                now = time.time()
                with lock:
                    rounds[0] += 1
                    max_stall[0] = max(max_stall[0], now - last)
                last = now
            except OSError as e:
                with lock:
                    broken.append({"conn": i, "t": time.time(), "error": str(e)})
                return
            time.sleep(0.1)

    threads = [threading.Thread(target=loop, args=(i, s), daemon=True)
               for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    print(json.dumps({"ready": len(socks)}), flush=True)
    for t in threads:
        t.join(timeout=120)
    for s in socks:
        s.close()
    with open(out_file, "w") as f:
        json.dump({"held": len(socks), "broken": broken, "rounds": rounds[0],
                   "max_stall_s": round(max_stall[0], 3)}, f)


def probe(stop_file, out_file):
    """A new HTTP connection every 50 ms (1 s timeout): when each one failed."""
    tries, failed = 0, []
    i = 0
    while not os.path.exists(stop_file):
        t = time.time()
        try:
            with socket.create_connection((VIP, 80), timeout=1,
                                          source_address=(SRC4[i % len(SRC4)], 0)) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                answer = b""
                while True:  # HTTP/1.0: the server closes after the answer
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                if b"backend=" not in answer:
                    raise OSError(f"no backend answer ({answer[:40]!r})")
        except OSError as e:
            failed.append({"t": t, "error": str(e)})
        tries += 1
        i += 1
        time.sleep(0.05)
    with open(out_file, "w") as f:
        json.dump({"tries": tries, "failed": failed}, f)


def client_main(argv):
    if argv[0] == "hold":
        hold(int(argv[1]), argv[2], argv[3], *(float(a) for a in argv[4:5]))
    else:
        probe(argv[1], argv[2])
    return 0


# ----------------------------------------------------------------- test side

class Traffic:
    """Held connections and the new-connection prober, in the client namespace."""

    def __init__(self, held, stall_s=5.0):
        self.stop = f"{STATE}/traffic.stop"
        if os.path.exists(self.stop):
            os.unlink(self.stop)
        me = os.path.abspath(__file__)
        ns = ["ip", "netns", "exec", f"{PREFIX}-client", PY, me, "--client"]
        self.hold = subprocess.Popen(ns + ["hold", str(held), self.stop, f"{STATE}/hold.json",
                                           str(stall_s)],
                                     stdout=subprocess.PIPE, text=True)
        self.probe = subprocess.Popen(ns + ["probe", self.stop, f"{STATE}/probe.json"])
        line = self.hold.stdout.readline()
        self.ready = json.loads(line).get("ready", 0) if line else 0

    def finish(self):
        open(self.stop, "w").close()
        for p in (self.hold, self.probe):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        held = json.load(open(f"{STATE}/hold.json"))
        probed = json.load(open(f"{STATE}/probe.json"))
        return held, probed


def tb(*args, env=None, timeout=120):
    r = run([SCRIPT, *map(str, args)], timeout=timeout,
            env=dict(os.environ, SLUICE_TB_PREFIX=PREFIX, SLUICE_BUILD_DIR=BUILD, **(env or {})))
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:])
    return r


def next_hops():
    r = run(["ip", "netns", "exec", f"{PREFIX}-router", "ip", "route", "show", VIP], timeout=10)
    return sorted(n for n, a in LB.items() if f"via {a} " in r.stdout)


def wait_hops(want, timeout):
    """Polls the router's FIB every 10 ms until the next hops are `want`;
    returns the seconds it took, or None."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if next_hops() == want:
            return time.time() - t0
        time.sleep(0.01)
    return None


def ctl(n, *args):
    r = run([SLUICECTL, "--socket", f"{STATE}/lb{n}.sock", *args], timeout=20)
    check(r.returncode == 0, f"sluicectl (lb{n}) {' '.join(args)}: exit {r.returncode} "
          f"{r.stderr.strip()[-300:]}")
    return r


def ctl_json(n, *args):
    r = ctl(n, "--json", *args)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def report(label, held, probed, window):
    """Checks no held connection broke; new connections failed only in window."""
    check(held["held"] == HELD_NOW[0] and not held["broken"],
          f"{label}: {held['held']} held connections, {len(held['broken'])} broken "
          f"({held['broken'][:3]}), {held['rounds']} echo rounds")
    lo, hi = window if window else (0, 0)
    outside = [f for f in probed["failed"] if not lo <= f["t"] <= hi]
    inside = len(probed["failed"]) - len(outside)
    print(f"{label}: new connections: {probed['tries']} tried, {inside} failed in the "
          f"detection window, {len(outside)} outside it")
    check(not outside, f"{label}: no new connection fails outside the detection window "
          f"({outside[:3]})")
    return inside


HELD_NOW = [HELD]


def active_active():
    t = Traffic(HELD)
    check(t.ready == HELD, f"{HELD} long-lived connections opened ({t.ready})")
    time.sleep(1)
    t0 = time.time()
    tb("kill", 2)
    gone = wait_hops([1, 3], 10)
    check(gone is not None and gone < 2.0,
          f"kill -9 lb2: the router stops using it after {gone} s (BFD 3 x 100 ms)")
    time.sleep(1.5)
    t1 = time.time()
    tb("start", 2)
    back = wait_hops([1, 2, 3], 40)
    check(back is not None, f"lb2 restarted: announced again after {time.time() - t1:.1f} s")
    print(f"events: kill at {t0:.3f}, out of the route at {t0 + (gone or 0):.3f}, restart at "
          f"{t1:.3f}, back in the route at {time.time():.3f}")
    # New connections may fail while the route changes, either way.
    window = (t0, time.time() + 1.5)
    time.sleep(1.5)
    held, probed = t.finish()
    print(f"failed new connections at: {[round(f['t'], 3) for f in probed['failed']]}")
    failed_new = report("kill -9 and return", held, probed, window)
    return gone, failed_new


def drain():
    t = Traffic(HELD)
    time.sleep(0.5)
    t0 = time.time()
    a = ctl_json(3, "instance", "drain")
    check(a.get("drained") is True, f"lb3 drained: {a.get('routes')}")
    gone = wait_hops([1, 2], 5)
    took = (time.time() - t0) if gone is not None else None
    check(took is not None, f"instance drain: the router stops using lb3 after {took} s")
    b = ctl_json(3, "bgp")
    check(b.get("serving") is False and "drained" in b.get("not_serving_reason", ""),
          f"sluicectl bgp on lb3 says why: {b.get('not_serving_reason')}")
    time.sleep(1)
    ctl(3, "instance", "undrain")
    check(wait_hops([1, 2, 3], 10) is not None, "instance undrain: lb3 announced again")
    # A host failure sends no FIN or BGP notification: cut lb3's link and
    # only BFD can tell the router.
    time.sleep(0.5)
    t0 = time.time()
    tb("cut", 3)
    bfd = wait_hops([1, 2], 10)
    check(bfd is not None and bfd < 1.5,
          f"lb3's link cut: BFD takes it out of the route after {bfd} s (3 x 100 ms)")
    window = (t0, t0 + (bfd or 10) + 1.5)
    time.sleep(0.5)
    tb("uncut", 3)
    back = wait_hops([1, 2, 3], 30)
    check(back is not None, f"lb3's link back: announced again after {back} s")
    time.sleep(1)
    held, probed = t.finish()
    failed_new = report("drain, undrain, link cut", held, probed, window)
    return took, bfd, failed_new


def active_passive():
    # lb3 becomes the backup (AS path 65001 65001 65001), lb2 leaves gracefully.
    tb("stop", 3)
    tb("start", 3, env={"SLUICE_TB_PREPEND_N": "3:2"})
    t0 = time.time()
    tb("stop", 2)
    check(time.time() - t0 < 10, "graceful stop of lb2")
    log = open(f"{STATE}/controlplane2.log").read()
    check("BGP: every route withdrawn" in log, "lb2's control plane withdrew on SIGTERM before the "
          "dataplane stopped")
    check(wait_hops([1], 20) is not None, f"active-passive: only lb1 in the route ({next_hops()})")
    t0, out = time.time(), ""
    while time.time() - t0 < 30 and "65001 65001 65001" not in out:
        out = run(["birdc", "-s", f"{STATE}/router-bird.ctl", "show", "route", "for", VIP, "all"],
                  timeout=10).stdout
        time.sleep(0.2)
    check("65001 65001 65001" in out, "the router holds the backup's route (AS path 65001 "
          "65001 65001) beside the active one's")
    check(next_hops() == [1], f"... and routes only to the active lb1 ({next_hops()})")
    HELD_NOW[0] = 30
    t = Traffic(30)
    time.sleep(1)
    t0 = time.time()
    tb("kill", 1)
    took = wait_hops([3], 10)
    check(took is not None and took < 2.0, f"active lb1 killed: backup lb3 takes over in {took} s")
    time.sleep(1)
    t1 = time.time()
    tb("start", 1)
    back = wait_hops([1], 40)
    check(back is not None, "lb1 back: traffic returns to the active instance")
    # New connections may fail while the route moves, either way.
    print(f"events: active killed at {t0:.3f}, restarted at {t1:.3f}, back at {time.time():.3f}")
    window = (t0, time.time() + 1.5)
    time.sleep(1)
    held, probed = t.finish()
    print(f"failed new connections at: {[round(f['t'], 3) for f in probed['failed']]}")
    failed_new = report("active-passive switch-over and back", held, probed, window)
    return took, back, failed_new


def main():
    global BUILD, SLUICECTL
    if os.geteuid() != 0:
        print("skip: needs root (network namespaces, XDP)")
        return SKIP
    if not shutil.which("bird") or not shutil.which("birdc"):
        print("skip: bird (Debian bird2) is not installed; scripts/setup.sh installs it")
        return SKIP
    controlplane, SLUICECTL = sys.argv[1], sys.argv[2]
    BUILD = os.path.dirname(os.path.dirname(os.path.abspath(controlplane)))
    if not os.path.exists(os.path.join(BUILD, "bpf", "vip_steer.bpf.o")):
        print("skip: bpf/ was not built (no libbpf/clang)")
        return SKIP
    global T0
    T0 = time.time()
    try:
        r = tb("up", timeout=180)
        if not check(r.returncode == 0, "testbed-ecmp.sh up"):
            return 1
        took = wait_hops([1, 2, 3], 40)
        if not check(took is not None, f"the router has 3 next hops for {VIP} ({next_hops()})"):
            for n in (1, 2, 3):
                print(open(f"{STATE}/controlplane{n}.log").read()[-1500:])
            return 1
        time.sleep(1)  # a few peer messages
        p = ctl_json(1, "peers")
        ups = [x for x in p.get("peers", []) if x["state"] == "up" and x["digests_equal"]]
        check(len(ups) == 2, f"lb1 sees 2 peers up with equal table digests: {p.get('peers')}")
        text = ctl(1, "peers").stdout
        check(text.count(" up ") == 2 and text.count(" equal ") == 2,
              f"sluicectl peers shows both peers up, digests equal:\n{text}")
        b = ctl_json(1, "bgp")
        check(any(x["prefix"] == f"{VIP}/32" and x["announced"] for x in b.get("routes", [])),
              f"sluicectl bgp: {VIP}/32 announced")
        print(f"FIGURES: bird_reload_ms={b.get('last_reload_ms')} (lb1's last BIRD configure)")
        t_start = time.time()
        killed, failed_kill = active_active()
        t_kill = time.time()
        drained, bfd, failed_cut = drain()
        t_drain = time.time()
        switch, switch_back, failed_switch = active_passive()
        print(f"FIGURES: kill9_withdraw_s={killed} new_conn_failed_kill={failed_kill} "
              f"drain_withdraw_s={drained} bfd_link_cut_s={bfd} new_conn_failed_cut={failed_cut} "
              f"active_passive_switch_s={switch} switch_back_s={switch_back} "
              f"new_conn_failed_switch={failed_switch}")
        print(f"phases: up {t_start - T0:.0f} s, kill {t_kill - t_start:.0f} s, drain+cut "
              f"{t_drain - t_kill:.0f} s, active-passive {time.time() - t_drain:.0f} s")
    finally:
        tb("down", timeout=120)
    print("PASS" if not failures else f"FAIL: {len(failures)} check(s): {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        sys.exit(client_main(sys.argv[2:]))
    sys.exit(main())
