#!/usr/bin/python3
"""The namespace test bed driven like an operator would: sluice-controlplane
(--config, --steer-iface) and sluicectl, no publish_tables.

  * the config's services answer from every backend, and vip_steer's VIP map
    holds exactly the published VIPs (the control plane fills it);
  * weights, drains, backend removal and addition change live while HTTP
    requests (Connection: close, NAT and DSR) and a keep-alive connection
    flow: every request succeeds, no connection is lost across publications;
    a removed backend gets no new connections, an added one does;
  * a service added with sluicectl is reachable on its new VIP (steered) and
    leaves the VIP map when deleted;
  * kill -9 of the control plane during a long-lived TCP echo transfer and a
    stream of requests: all succeed; restarted with the same config, it
    adopts the tables (generation continues) and accepts changes again.

usage: testbed_cp_test.py SLUICE_DATAPLANE SLUICE_CONTROLPLANE SLUICECTL
       testbed_cp_test.py --client ...   (runs inside the client namespace)
Exit 0 pass, 1 fail, 77 skip (not root, binaries missing).
"""

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time

from itest_util import check, failures, run, run_testbed  # noqa: E402

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TESTBED = os.path.join(REPO, "scripts", "testbed.sh")
PY = "/usr/bin/python3"

PREFIX = f"sc{os.getpid() % 100000}"
NS_CLIENT, NS_LB = f"{PREFIX}-client", f"{PREFIX}-lb"
SHM = f"/dev/shm/sluice-{PREFIX}-tb"
RUN = f"/run/sluice-cptest-{PREFIX}"
SOCK = f"{RUN}/cp.sock"
SRC4 = [f"203.0.113.{i}" for i in (10, 11, 12, 13)]
B = {f"be{i}": f"198.51.100.{10 + i}" for i in (1, 2, 3)}
DSR_VIP, NAT_VIP, NEW_VIP = "192.0.2.10", "192.0.2.20", "192.0.2.30"

CONFIG = f"""instance: {PREFIX}
services:
  - name: web-dsr
    vip: {DSR_VIP}
    port: 80
    mode: dsr-ipip
    backends: [{{address: {B['be1']}}}, {{address: {B['be2']}}}, {{address: {B['be3']}}}]
  - name: web-nat
    vip: {NAT_VIP}
    port: 80
    mode: nat
    backends: [{{address: {B['be1']}}}, {{address: {B['be2']}}}, {{address: {B['be3']}}}]
  - name: echo-nat
    vip: {NAT_VIP}
    port: 7
    mode: nat
    backends: [{{address: {B['be1']}}}, {{address: {B['be2']}}}, {{address: {B['be3']}}}]
"""

TIMEOUT_S = 3

# ----------------------------------------------------------------- client side
# Runs in the client namespace; prints one JSON document.


def http_once(vip, port, src):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT_S)
        s.bind((src, 0))
        s.connect((vip, port))
        s.sendall(f"GET / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[-1].decode()
    fields = dict(kv.split("=", 1) for kv in body.split() if "=" in kv)
    if "backend" not in fields:
        raise OSError(f"bad answer {data[:80]!r}")
    return fields["backend"]


def client_stream(vip, port, seconds, sources):
    """HTTP requests back to back for `seconds`: {"answers": {backend: n}, "errors": [...]}."""
    answers, errors = collections.Counter(), []
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end and i < 100000:
        try:
            answers[http_once(vip, port, sources[i % len(sources)])] += 1
        except OSError as e:
            errors.append(f"{time.monotonic() - end + seconds:.2f}s: {e}")
        i += 1
    return {"answers": answers, "errors": errors[:5], "n_errors": len(errors)}


def client_keepalive(vip, port, seconds, src):
    """One HTTP/1.1 connection, a request every 50 ms: {"backends": [...], "errors": [...]}."""
    s = socket.create_connection((vip, port), TIMEOUT_S, (src, 0))
    f = s.makefile("rb")
    seen, errors = collections.Counter(), []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not errors:
        if len(seen) == 1 and sum(seen.values()) == 1:  # tell the test which backend holds it
            print(json.dumps({"first": next(iter(seen))}), flush=True)
        try:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {vip}\r\n\r\n".encode())
            if not f.readline():
                raise OSError("connection closed")
            length = 0
            while (line := f.readline().strip()):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = f.read(length).decode()
            seen[body.split()[0].split("=")[1]] += 1
        except (OSError, IndexError) as e:
            errors.append(str(e) or type(e).__name__)
        time.sleep(0.05)
    s.close()
    return {"backends": seen, "errors": errors}


def client_echo(vip, port, seconds, src):
    """One TCP echo connection moving 16 KiB every 20 ms, each checked byte for byte."""
    s = socket.create_connection((vip, port), TIMEOUT_S, (src, 0))
    rounds, moved, errors = 0, 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not errors:
        payload = os.urandom(16384)
        try:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("connection closed")
                got += chunk
            if got != payload:
                raise OSError("echo mismatch")
            rounds, moved = rounds + 1, moved + len(payload)
        except OSError as e:
            errors.append(str(e) or type(e).__name__)
        time.sleep(0.02)
    s.close()
    return {"rounds": rounds, "bytes": moved, "errors": errors}


def client_main(argv):
    cmd, vip, port, seconds, srcs = argv[0], argv[1], int(argv[2]), float(argv[3]), argv[4:]
    fn = {"stream": lambda: client_stream(vip, port, seconds, srcs),
          "keepalive": lambda: client_keepalive(vip, port, seconds, srcs[0]),
          "echo": lambda: client_echo(vip, port, seconds, srcs[0])}[cmd]
    try:
        out = fn()
    except OSError as e:
        out = {"errors": [f"could not start: {e}"], "n_errors": 1}
    print(json.dumps(out))
    return 0


# ----------------------------------------------------------------- test side

def testbed(*args, timeout=120):
    return run_testbed(TESTBED, PREFIX, BUILD, *args, timeout=timeout)


def client(*args):
    """Starts a client in the client namespace; .result() waits for its JSON."""
    p = subprocess.Popen(["ip", "netns", "exec", NS_CLIENT, PY, os.path.abspath(__file__),
                          "--client", *map(str, args)], stdout=subprocess.PIPE, text=True)

    class Handle:
        def first_line(self):
            return json.loads(p.stdout.readline() or "{}")

        def result(self, timeout=60):
            out, _ = p.communicate(timeout=timeout)
            try:
                return json.loads(out)
            except ValueError:
                return {"errors": [f"client output: {out!r}"], "n_errors": 1}
    return Handle()


def ctl(*args):
    r = run([SLUICECTL, "--socket", SOCK, *args], timeout=20)
    check(r.returncode == 0, f"sluicectl {' '.join(args)}: "
          f"{(r.stdout + r.stderr).strip().splitlines()[-1:] or ''}")
    return r


def start_cp(log_name):
    steer = []
    if STEERED:
        steer = ["--steer-iface", "lb0", "--steer-nat-pool", "198.51.100.9",
                 "--steer-own", "198.51.100.3"]
    log = open(f"{RUN}/{log_name}", "w")
    p = subprocess.Popen(["ip", "netns", "exec", NS_LB, CONTROLPLANE, "--config",
                          f"{RUN}/cp.yaml", "--shm-path", SHM, "--socket", SOCK,
                          "--state-file", f"{RUN}/state.yaml", "--metrics", "off", *steer],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        if run([SLUICECTL, "--socket", SOCK, "status"], timeout=5).returncode == 0:
            return p
        if p.poll() is not None:
            break
        time.sleep(0.1)
    check(False, f"control plane answers ({open(f'{RUN}/{log_name}').read()[-400:]})")
    return p


def steered_vips():
    r = run(["ip", "netns", "exec", NS_LB, os.path.join(BUILD, "bpf", "sluice-steer"), "status",
             "--iface", "lb0"], timeout=10)
    return sorted(line.split()[1] for line in r.stdout.splitlines() if line.startswith("vip "))


def count(vip, seconds=1.5):
    return client("stream", vip, 80, seconds, *SRC4).result()


def all_ok(label, res, key="n_errors"):
    n = res.get(key, len(res.get("errors", []))) if key else len(res.get("errors", []))
    return check(n == 0 and not res.get("errors"), f"{label}: {res}")


def live_changes():
    """Weights, drains, removal and addition while traffic flows."""
    streams = [client("stream", DSR_VIP, 80, 9, *SRC4), client("stream", NAT_VIP, 80, 9, *SRC4)]
    ka = client("keepalive", NAT_VIP, 80, 9, SRC4[0])
    held = ka.first_line().get("first", "be1")
    # The backend removed and re-added is one the keep-alive connection is not
    # on (removal keeps flows while the slot stays retired, but re-adding gives
    # the backend a new incarnation).
    gone = "be3" if held != "be3" else "be2"
    print(f"keep-alive connection held by {held}; {gone} will be removed and re-added")
    time.sleep(0.5)
    steps = [("backend", "set-weight", "web-nat", B["be1"], "0"),
             ("backend", "set-weight", "web-dsr", B["be2"], "5"),
             ("backend", "drain", "web-nat", B["be2"]),
             ("backend", "set-weight", "web-nat", B["be1"], "3"),
             ("backend", "undrain", "web-nat", B["be2"]),
             ("backend", "set-weight", "web-nat", B[held], "0"),
             ("backend", "del", "web-dsr", B[gone]),
             ("backend", "del", "web-nat", B[gone]),
             ("backend", "add", "web-dsr", B[gone], "--weight", "2"),
             ("backend", "add", "web-nat", B[gone]),
             ("backend", "set-weight", "web-nat", B[held], "1"),
             ("backend", "set-weight", "web-dsr", B["be2"], "1")]
    for s in steps:
        ctl(*s)
        time.sleep(0.6)
    for label, st in zip(("dsr-ipip stream", "nat stream"), streams):
        res = st.result()
        all_ok(f"live changes: every {label} request answered", res)
        check(sum(res.get("answers", {}).values()) > 20, f"live changes: {label} made requests")
    all_ok("live changes: the keep-alive connection survived every publication", ka.result(),
           key=None)

    ctl("backend", "del", "web-dsr", B["be3"])
    res = count(DSR_VIP)
    check(res["n_errors"] == 0 and res["answers"].get("be3", 0) == 0
          and len(res["answers"]) == 2, f"removed be3 gets no new connections: {res}")
    ctl("backend", "add", "web-dsr", B["be3"])
    res = count(DSR_VIP)
    check(res["n_errors"] == 0 and res["answers"].get("be3", 0) > 0,
          f"re-added be3 gets new connections: {res}")


def new_service():
    ctl("service", "add", "web-new", "--vip", NEW_VIP, "--port", "80", "--mode", "dsr-ipip")
    for b in ("be1", "be2"):
        ctl("backend", "add", "web-new", B[b])
    # Backends need the VIP on lo for DSR.
    for b in ("be1", "be2"):
        run(["ip", "netns", "exec", f"{PREFIX}-{b}", "ip", "addr", "add", f"{NEW_VIP}/32",
             "dev", "lo"], timeout=10)
    if STEERED:
        check(f"tcp:{NEW_VIP}:80" in steered_vips(), f"vip_steer map has the new VIP: "
              f"{steered_vips()}")
    res = count(NEW_VIP)
    check(res["n_errors"] == 0 and set(res["answers"]) == {"be1", "be2"},
          f"a service added with sluicectl answers on its new VIP: {res}")
    ctl("service", "del", "web-new")
    if STEERED:
        check(f"tcp:{NEW_VIP}:80" not in steered_vips(), f"deleted VIP left the vip_steer map: "
              f"{steered_vips()}")


def restart(cp):
    """kill -9 the control plane during a transfer; restart; nothing interrupted."""
    gen_before = json.loads(run([SLUICECTL, "--socket", SOCK, "--json", "status"]).stdout)
    echo = client("echo", NAT_VIP, 7, 7, SRC4[1])
    streams = [client("stream", DSR_VIP, 80, 7, *SRC4), client("stream", NAT_VIP, 80, 7, *SRC4)]
    time.sleep(1.5)
    os.killpg(cp.pid, signal.SIGKILL)
    cp.wait(timeout=10)
    check(True, "control plane killed with SIGKILL during the transfer")
    time.sleep(1.5)
    cp = start_cp("cp2.log")
    status = json.loads(run([SLUICECTL, "--socket", SOCK, "--json", "status"]).stdout or "{}")
    check(status.get("generation", 0) > gen_before.get("generation", 0),
          f"restarted control plane continues the generation: {gen_before.get('generation')}"
          f" -> {status.get('generation')}")
    res = echo.result()
    check(not res["errors"] and res["rounds"] > 50,
          f"long-lived echo transfer across kill -9 and restart: {res}")
    for label, st in zip(("dsr-ipip", "nat"), streams):
        all_ok(f"{label} requests across kill -9 and restart", st.result())
    ctl("backend", "set-weight", "web-dsr", B["be1"], "2")
    res = count(DSR_VIP)
    check(res["n_errors"] == 0 and len(res["answers"]) == 3,
          f"after the restart: traffic and changes work: {res}")
    return cp


def main():
    global BUILD, CONTROLPLANE, SLUICECTL, STEERED
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        return client_main(sys.argv[2:])
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    dataplane, CONTROLPLANE, SLUICECTL = sys.argv[1:4]
    BUILD = os.path.dirname(os.path.dirname(os.path.abspath(dataplane)))
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, XDP)")
        return SKIP
    for b in (dataplane, CONTROLPLANE, SLUICECTL, os.path.join(BUILD, "bpf", "sluice-decap")):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    cp = None
    os.makedirs(RUN, exist_ok=True)
    try:
        up = testbed("up")
        print(up.stdout + up.stderr, end="")
        if not check(up.returncode == 0, "test bed up"):
            return 1
        driver = open(f"/run/sluice-testbed-{PREFIX}/driver").read().strip()
        STEERED = driver == "af_xdp"
        print(f"dataplane driver: net_{driver}")
        with open(f"{RUN}/cp.yaml", "w") as f:
            f.write(CONFIG)
        cp = start_cp("cp1.log")
        if STEERED:
            want = sorted([f"tcp:{DSR_VIP}:80", f"tcp:{NAT_VIP}:80", f"tcp:{NAT_VIP}:7"])
            check(steered_vips() == want, f"vip_steer map = the config's VIPs: {steered_vips()}")
        for vip in (DSR_VIP, NAT_VIP):
            res = count(vip)
            check(res["n_errors"] == 0 and len(res["answers"]) == 3,
                  f"{vip}: every backend answers: {res}")
        # Direct server return: replies bypass the balancer, so its counters
        # see requests but no reply traffic; full NAT replies come back through.
        stats = {s["name"]: s for s in json.loads(ctl("--json", "list", "--stats").stdout)
                 ["stats"]["services"]}
        dsr, nat = stats.get("web-dsr", {}), stats.get("web-nat", {})
        check(dsr.get("packets", 0) > 0 and dsr.get("reply_packets", -1) == 0,
              f"dsr: requests counted, no reply through the balancer ({dsr.get('packets')}, "
              f"{dsr.get('reply_packets')})")
        check(nat.get("reply_packets", 0) > 0,
              f"nat: replies come back through the balancer ({nat.get('reply_packets')})")
        live_changes()
        new_service()
        cp = restart(cp)
    except subprocess.TimeoutExpired as e:
        check(False, f"timed out: {e.cmd}")
    finally:
        if cp is not None and cp.poll() is None:
            os.killpg(cp.pid, signal.SIGTERM)
            try:
                cp.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(cp.pid, signal.SIGKILL)
        if failures:
            for name in ("cp1.log", "cp2.log"):
                if os.path.exists(f"{RUN}/{name}"):
                    print(f"--- {name}\n" + open(f"{RUN}/{name}").read()[-1500:])
        down = testbed("down", timeout=60)
        check(down.returncode == 0, "test bed down")
        run(["rm", "-rf", RUN, SHM + ".lock"])
        check(f"{PREFIX}-" not in run(["ip", "netns", "list"]).stdout, "no namespace left behind")
    print("FAILED:" if failures else "PASSED", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
