#!/usr/bin/python3
"""New-flow defence and connection gauges through the real binaries, on the
namespace test bed (scripts/testbed.sh) driven by sluice-controlplane and
sluicectl, with kernel TCP clients and scapy:

  * synproxy `on` (nat): HTTP requests and a 256 KiB TCP echo transfer
    (checked byte for byte: the sequence translation works both ways)
    complete through the cookie handshake; 2,000 spoofed SYNs get cookies and
    create no flow (worker flows_created/flows_active unchanged, no spoofed
    source in `sluicectl conns`);
  * synproxy `auto`: a SYN burst over synproxy_syn_rate turns cookies on, and
    HTTP still works;
  * mid-flow RST: an ACK without state to a nat VIP gets an RST back
    (captured), counted as mid_flow_rst_sent;
  * client_rate: 40 SYNs from one client admit about client_burst, the rest
    are counted as client_rate_limited and in the service's `limited`; another
    client is unaffected;
  * max_conns/min_conns: with 2 connections held open on a backend capped at
    2, a third is refused (backend_conn_limit, the backend's conn_limited, in
    /metrics); list shows ActiveConn 2; the two closed by FIN become InActConn
    (list, list --stats, /metrics sluice_backend_inactive_flows), `backend
    drain --wait` does not wait for them, a new connection is admitted again
    (below min_conns), and the inactive ones expire;
  * --new-flow-budget: the dataplane runs with a budget; a burst of spoofed
    SYNs over it is counted as new_flow_budget and the service's `limited`,
    and new connections work again a second later.

usage: testbed_defence_test.py SLUICE_DATAPLANE SLUICE_CONTROLPLANE SLUICECTL
       testbed_defence_test.py --client ...   (runs inside the client namespace)
Exit 0 pass, 1 fail, 77 skip (not root, scapy or binaries missing). About 60 s.
"""

import json
import os
import random
import re
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

PREFIX = f"sd{os.getpid() % 100000}"
NS_CLIENT, NS_LB = f"{PREFIX}-client", f"{PREFIX}-lb"
SHM = f"/dev/shm/sluice-{PREFIX}-tb"
RUN = f"/run/sluice-deftest-{PREFIX}"
SOCK = f"{RUN}/cp.sock"
METRICS = "127.0.0.1:9477"  # inside the lb namespace: no clash with the host
SRC = "203.0.113.10"
SRC_RATE = "203.0.113.11"
SRC_OTHER = "203.0.113.12"
B = {f"be{i}": f"198.51.100.{10 + i}" for i in (1, 2, 3)}
SYN_VIP, AUTO_VIP, RST_VIP, RATE_VIP, CAP_VIP, BUDGET_VIP = (
    "192.0.2.20", "192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24", "192.0.2.25")
BUDGET = 300  # --new-flow-budget (and its burst), new flows per second
ALL3 = f"[{{address: {B['be1']}}}, {{address: {B['be2']}}}, {{address: {B['be3']}}}]"

CONFIG = f"""instance: {PREFIX}
services:
  - name: syn-web
    vip: {SYN_VIP}
    port: 80
    mode: nat
    defence: {{synproxy: "on"}}
    backends: {ALL3}
  - name: syn-echo
    vip: {SYN_VIP}
    port: 7
    mode: nat
    defence: {{synproxy: "on"}}
    backends: [{{address: {B['be2']}}}]
  - name: auto-web
    vip: {AUTO_VIP}
    port: 80
    mode: nat
    defence: {{synproxy: auto, synproxy_syn_rate: 100}}
    backends: {ALL3}
  - name: rst-web
    vip: {RST_VIP}
    port: 80
    mode: nat
    backends: {ALL3}
  - name: rate-web
    vip: {RATE_VIP}
    port: 80
    mode: nat
    defence: {{client_rate: 5, client_burst: 5}}
    backends: {ALL3}
  - name: capped-echo
    vip: {CAP_VIP}
    port: 7
    mode: nat
    timeouts: {{fin: 4, time_wait: 4}}
    backends: [{{address: {B['be1']}, max_conns: 2, min_conns: 1}}]
  - name: budget-web
    vip: {BUDGET_VIP}
    port: 80
    mode: nat
    backends: {ALL3}
"""

TIMEOUT_S = 3

# ----------------------------------------------------------------- client side
# Runs in the client namespace; prints JSON lines.


def http_once(vip, src, timeout=TIMEOUT_S):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect((vip, 80))
        s.sendall(f"GET / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    if b"backend=" not in data:
        raise OSError(f"bad answer {data[:80]!r}")
    return data.split(b"backend=", 1)[1].split()[0].decode()


def client_http(vip, n, src):
    answers, errors = {}, []
    for _ in range(int(n)):
        try:
            b = http_once(vip, src)
            answers[b] = answers.get(b, 0) + 1
        except OSError as e:
            errors.append(str(e) or type(e).__name__)
    return {"answers": answers, "errors": errors[:5], "n_errors": len(errors)}


def echo_roundtrip(s, size):
    payload = os.urandom(size)
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("connection closed")
        got += chunk
    if got != payload:
        raise OSError("echo mismatch")


def client_echo(vip, total, src):
    """One connection moving `total` bytes in 16 KiB rounds, each checked."""
    moved = 0
    try:
        with socket.create_connection((vip, 7), TIMEOUT_S, (src, 0)) as s:
            while moved < int(total):
                echo_roundtrip(s, 16384)
                moved += 16384
        return {"bytes": moved, "errors": []}
    except OSError as e:
        return {"bytes": moved, "errors": [str(e) or type(e).__name__]}


def spoofed_syns(vip, n, src=None):
    """n SYNs (spoofed sources unless `src`), built first, then written back to
    back on one packet socket (scapy's send() is too slow for a burst)."""
    from scapy.all import IP, TCP, Ether, conf, get_if_hwaddr, getmacbyip
    conf.verb = 0
    rnd = random.Random(int(n) * 7919)
    eth = Ether(src=get_if_hwaddr("c0"), dst=getmacbyip("203.0.113.1"))
    frames = [bytes(eth / IP(src=src or f"203.0.113.{rnd.randrange(100, 250)}", dst=vip) /
                    TCP(sport=rnd.randrange(20000, 60000), dport=80, flags="S",
                        seq=rnd.getrandbits(32))) for _ in range(int(n))]
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind(("c0", 0))
        t = time.monotonic()
        for f in frames:
            s.send(f)
    return {"sent": len(frames), "seconds": round(time.monotonic() - t, 3)}


def client_midflow(vip):
    """An ACK without state from SRC_OTHER; returns the RSTs captured for it."""
    from scapy.all import IP, TCP, AsyncSniffer, conf, send
    conf.verb = 0
    sport = 45678
    sn = AsyncSniffer(iface="c0", filter=f"tcp and src host {vip} and dst port {sport}")
    sn.start()
    time.sleep(0.5)
    send(IP(src=SRC_OTHER, dst=vip) / TCP(sport=sport, dport=80, flags="A", seq=1000,
                                          ack=123456), iface="c0")
    time.sleep(1.0)
    got = sn.stop() or []
    rsts = [p for p in got if TCP in p and p[TCP].flags & 0x04]
    return {"rst": len(rsts), "seq": [int(p[TCP].seq) for p in rsts]}


def client_capped(vip, src):
    """Two held echo connections, a third attempt, then steps on stdin."""
    out = lambda d: print(json.dumps(d), flush=True)  # noqa: E731
    held = []
    for _ in range(2):
        s = socket.create_connection((vip, 7), TIMEOUT_S, (src, 0))
        echo_roundtrip(s, 100)
        held.append(s)
    out({"held": len(held)})
    try:
        with socket.create_connection((vip, 7), 1.5, (src, 0)) as s:
            echo_roundtrip(s, 100)
        out({"third": "ok"})
    except OSError as e:
        out({"third": "failed", "why": str(e) or type(e).__name__})
    sys.stdin.readline()  # "close"
    for s in held:
        s.shutdown(socket.SHUT_WR)
        s.recv(10)  # the echo server's FIN
        s.close()
    out({"closed": 2})
    sys.stdin.readline()  # "again"
    try:
        with socket.create_connection((vip, 7), TIMEOUT_S, (src, 0)) as s:
            echo_roundtrip(s, 100)
        out({"fourth": "ok"})
    except OSError as e:
        out({"fourth": "failed", "why": str(e) or type(e).__name__})
    return None


def client_main(argv):
    cmd, args = argv[0], argv[1:]
    fn = {"http": lambda: client_http(args[0], args[1], args[2]),
          "echo": lambda: client_echo(args[0], args[1], args[2]),
          "syns": lambda: spoofed_syns(*args),
          "midflow": lambda: client_midflow(args[0]),
          "capped": lambda: client_capped(args[0], args[1])}[cmd]
    try:
        res = fn()
    except OSError as e:
        res = {"errors": [f"could not start: {e}"], "n_errors": 1}
    if res is not None:
        print(json.dumps(res), flush=True)
    return 0


# ----------------------------------------------------------------- test side


def testbed(*args, timeout=120):
    return run_testbed(TESTBED, PREFIX, BUILD, *args, timeout=timeout)


def client(*args, timeout=60):
    r = run(["ip", "netns", "exec", NS_CLIENT, PY, os.path.abspath(__file__), "--client",
             *map(str, args)], timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"errors": [f"client output: {r.stdout!r} {r.stderr[-300:]!r}"], "n_errors": 1}


def ctl(*args, ok=True):
    r = run([SLUICECTL, "--socket", SOCK, *args], timeout=20)
    if ok:
        check(r.returncode == 0, f"sluicectl {' '.join(args)}: "
              f"{(r.stdout + r.stderr).strip().splitlines()[-1:] or ''}")
    return r


def stats():
    r = ctl("--json", "list", "--stats")
    try:
        return json.loads(r.stdout)["stats"]
    except (ValueError, KeyError):
        return {"services": [], "drops": {}, "worker": {}}


def service(st, name):
    return next((s for s in st["services"] if s.get("name") == name), {})


def metrics():
    r = run(["ip", "netns", "exec", NS_LB, PY, "-c",
             "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
             f"'http://{METRICS}/metrics', timeout=5).read().decode())"], timeout=20)
    return r.stdout


def metric(text, name, labels):
    m = re.search(rf'^{name}\{{[^}}]*{labels}[^}}]*\}} (\d+)$', text, re.M)
    return int(m.group(1)) if m else None


def start_cp(steered):
    # With net_af_xdp, vip_steer passes only the VIPs in its map to the
    # dataplane: the control plane fills it.
    steer = ["--steer-iface", "lb0", "--steer-nat-pool", "198.51.100.9",
             "--steer-own", "198.51.100.3"] if steered else []
    log = open(f"{RUN}/cp.log", "w")
    p = subprocess.Popen(["ip", "netns", "exec", NS_LB, CONTROLPLANE, "--config",
                          f"{RUN}/cp.yaml", "--shm-path", SHM, "--socket", SOCK,
                          "--state-file", f"{RUN}/state.yaml", "--metrics", METRICS, *steer],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        if run([SLUICECTL, "--socket", SOCK, "status"], timeout=5).returncode == 0:
            return p
        if p.poll() is not None:
            break
        time.sleep(0.1)
    check(False, f"control plane answers ({open(f'{RUN}/cp.log').read()[-400:]})")
    return p


def delta(before, after, group, key):
    return after[group].get(key, 0) - before[group].get(key, 0)


def synproxy_on():
    st0 = stats()
    res = client("http", SYN_VIP, 10, SRC)
    check(res.get("n_errors") == 0 and sum(res.get("answers", {}).values()) == 10,
          f"synproxy on: 10 HTTP requests through the cookie handshake: {res}")
    res = client("echo", SYN_VIP, 262144, SRC)
    check(not res.get("errors") and res.get("bytes") == 262144,
          f"synproxy on: 256 KiB echoed byte for byte (sequence translation): {res}")
    st1 = stats()
    check(delta(st0, st1, "worker", "syn_cookies_sent") >= 11 and
          delta(st0, st1, "worker", "syn_cookies_valid") >= 11,
          f"synproxy on: cookies sent {delta(st0, st1, 'worker', 'syn_cookies_sent')}, valid "
          f"{delta(st0, st1, 'worker', 'syn_cookies_valid')} (>= 11 each)")
    time.sleep(0.5)
    st1 = stats()
    res = client("syns", SYN_VIP, 2000)
    print(f"spoofed SYN flood: {res}")
    time.sleep(1.0)
    st2 = stats()
    sent = delta(st1, st2, "worker", "syn_cookies_sent")
    check(sent >= 1900, f"synproxy on: 2,000 spoofed SYNs answered with cookies ({sent})")
    check(delta(st1, st2, "worker", "flows_created") == 0,
          f"synproxy on: the SYN flood created no flow (flows_created "
          f"+{delta(st1, st2, 'worker', 'flows_created')})")
    check(st2["worker"].get("flows_active", -1) <= st1["worker"].get("flows_active", 0),
          f"synproxy on: flows_active {st1['worker'].get('flows_active')} -> "
          f"{st2['worker'].get('flows_active')}")
    r = ctl("--json", "conns", "syn-web", "--client", "203.0.113.0/24", ok=False)
    if r.returncode == 0:
        flows = json.loads(r.stdout).get("flows", [])
        spoofed = [f for f in flows if not str(f.get("client", "")).startswith(SRC + ":")]
        check(not spoofed, f"synproxy on: no spoofed source in `sluicectl conns` "
              f"({len(flows)} flows, {spoofed[:3]})")
    else:
        print(f"note: sluicectl conns unavailable here: {(r.stdout + r.stderr).strip()[-200:]}")


def synproxy_auto():
    st0 = stats()
    res = client("syns", AUTO_VIP, 1000)
    print(f"SYN burst to the auto service: {res}")
    time.sleep(0.5)
    st1 = stats()
    cookies = delta(st0, st1, "worker", "syn_cookies_sent")
    created = delta(st0, st1, "worker", "flows_created")
    check(cookies >= 500 and created < 500,
          f"synproxy auto: a burst over synproxy_syn_rate turns cookies on ({cookies} cookie "
          f"SYN-ACKs, {created} flows created of 1000 SYNs)")
    time.sleep(1.0)  # the new-flow budget refills
    res = client("http", AUTO_VIP, 5, SRC)
    st2 = stats()
    check(res.get("n_errors") == 0 and delta(st1, st2, "worker", "syn_cookies_valid") >= 5,
          f"synproxy auto: HTTP works with cookies on: {res}")


def mid_flow_rst():
    st0 = stats()
    res = client("midflow", RST_VIP)
    st1 = stats()
    check(res.get("rst", 0) >= 1, f"mid-flow RST: an ACK without state gets an RST back: {res}")
    check(delta(st0, st1, "worker", "mid_flow_rst_sent") == 1,
          f"mid-flow RST: counted as mid_flow_rst_sent "
          f"(+{delta(st0, st1, 'worker', 'mid_flow_rst_sent')})")


def client_rate():
    st0 = stats()
    res = client("syns", RATE_VIP, 40, SRC_RATE)
    time.sleep(0.3)
    st1 = stats()
    limited = delta(st0, st1, "drops", "client_rate_limited")
    svc = service(st1, "rate-web").get("limited", 0) - service(st0, "rate-web").get("limited", 0)
    check(25 <= limited <= 35 and svc == limited,
          f"client_rate 5/s burst 5: 40 SYNs from one client, {limited} client_rate_limited "
          f"(service limited +{svc}), sent in {res.get('seconds')} s")
    res = client("http", RATE_VIP, 3, SRC_OTHER)
    check(res.get("n_errors") == 0, f"client_rate: another client is not limited: {res}")


def backend_caps():
    p = subprocess.Popen(["ip", "netns", "exec", NS_CLIENT, PY, os.path.abspath(__file__),
                          "--client", "capped", CAP_VIP, SRC], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)

    def line():
        try:
            return json.loads(p.stdout.readline() or "{}")
        except ValueError:
            return {}

    def say(word):
        try:
            p.stdin.write(word + "\n")
            p.stdin.flush()
        except OSError:
            pass
    try:
        st0 = stats()
        check(line().get("held") == 2, "max_conns: two connections held on the capped backend")
        third = line()
        st1 = stats()
        be = service(st1, "capped-echo").get("backends", [{}])[0]
        be0 = service(st0, "capped-echo").get("backends", [{}])[0]
        check(third.get("third") == "failed",
              f"max_conns 2: a third connection is refused: {third}")
        check(be.get("active_flows") == 2 and be.get("conn_limited", 0) > be0.get("conn_limited", 0)
              and delta(st0, st1, "drops", "backend_conn_limit") >= 1,
              f"max_conns: ActiveConn 2, conn_limited {be0.get('conn_limited')} -> "
              f"{be.get('conn_limited')}, backend_conn_limit "
              f"+{delta(st0, st1, 'drops', 'backend_conn_limit')}")
        text = ctl("list", "capped-echo").stdout
        check(re.search(rf"-> {re.escape(B['be1'])}:7\s+nat\s+1\s+up\s+2\s+0\b", text),
              f"list: ActiveConn 2 InActConn 0 for the capped backend:\n{text}")
        m = metrics()
        check((metric(m, "sluice_backend_conn_limited_total", 'service="capped-echo"') or 0) >= 1,
              "/metrics: sluice_backend_conn_limited_total counts the refusal")

        say("close")
        check(line().get("closed") == 2, "both held connections closed by FIN")
        time.sleep(0.5)
        st2 = stats()
        be = service(st2, "capped-echo").get("backends", [{}])[0]
        check(be.get("active_flows") == 0 and be.get("inactive_flows") == 2,
              f"InActConn: the 2 closed connections are inactive (active "
              f"{be.get('active_flows')}, inactive {be.get('inactive_flows')})")
        check(service(st2, "capped-echo").get("inactive_flows") == 2,
              f"InActConn: the service's inactive_flows = 2 "
              f"({service(st2, 'capped-echo').get('inactive_flows')})")
        text = ctl("list", "capped-echo").stdout
        check(re.search(rf"-> {re.escape(B['be1'])}:7\s+nat\s+1\s+up\s+0\s+2\b", text),
              f"list: ActiveConn 0 InActConn 2:\n{text}")
        text = ctl("list", "capped-echo", "--stats").stdout
        check(re.search(r"ActiveConn InActConn", text) and
              re.search(rf"-> {re.escape(B['be1'])}:7(\s+\d+){{5}}\s+0\s+2$", text, re.M),
              f"list --stats: ActiveConn 0 InActConn 2:\n{text}")
        m = metrics()
        check(metric(m, "sluice_backend_inactive_flows", 'service="capped-echo"') == 2 and
              metric(m, "sluice_service_inactive_flows", 'service="capped-echo"') == 2 and
              metric(m, "sluice_backend_active_flows", 'service="capped-echo"') == 0,
              "/metrics: sluice_backend_inactive_flows 2, sluice_service_inactive_flows 2, "
              "sluice_backend_active_flows 0")
        t = time.monotonic()
        r = ctl("backend", "drain", "capped-echo", B["be1"], "--wait", "--timeout", "3", ok=False)
        took = time.monotonic() - t
        check(r.returncode == 0 and took < 2.5,
              f"drain --wait ignores inactive flows (exit {r.returncode} in {took:.1f} s: "
              f"{r.stdout.strip()[-120:]!r})")
        ctl("backend", "undrain", "capped-echo", B["be1"])
        say("again")
        check(line().get("fourth") == "ok",
              "below min_conns: the backend takes new connections again")
        p.wait(timeout=10)
        # fin/time_wait of 4 s: the inactive flows expire (the sweep visits
        # the table every 2 s).
        for _ in range(40):
            be = service(stats(), "capped-echo").get("backends", [{}])[0]
            if be.get("inactive_flows") == 0:
                break
            time.sleep(0.25)
        check(be.get("inactive_flows") == 0 and be.get("active_flows") == 0,
              f"InActConn: the closed connections expire (active {be.get('active_flows')}, "
              f"inactive {be.get('inactive_flows')})")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def new_flow_budget():
    time.sleep(1.2)  # a full bucket
    st0 = stats()
    res = client("syns", BUDGET_VIP, 3 * BUDGET)
    time.sleep(0.3)
    st1 = stats()
    dropped = delta(st0, st1, "drops", "new_flow_budget")
    created = delta(st0, st1, "worker", "flows_created")
    svc = (service(st1, "budget-web").get("limited", 0) -
           service(st0, "budget-web").get("limited", 0))
    # Admitted: the burst plus what refills while scapy sends.
    want = BUDGET + BUDGET * res.get("seconds", 0) + 10
    check((dropped > 0 and created <= want and 3 * BUDGET - 20 <= dropped + created <= 3 * BUDGET
           and svc == dropped),
          f"--new-flow-budget {BUDGET}: {3 * BUDGET} SYNs in {res.get('seconds')} s: "
          f"{created} flows created (<= {want:.0f}), {dropped} new_flow_budget drops "
          f"(service limited +{svc})")
    time.sleep(1.2)
    res = client("http", BUDGET_VIP, 3, SRC)
    check(res.get("n_errors") == 0, f"--new-flow-budget: new connections work again: {res}")


def main():
    global BUILD, CONTROLPLANE, SLUICECTL
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        return client_main(sys.argv[2:])
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    dataplane, CONTROLPLANE, SLUICECTL = sys.argv[1:4]
    BUILD = os.path.dirname(os.path.dirname(os.path.abspath(dataplane)))
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        return SKIP
    try:
        import scapy.all  # noqa: F401
    except ImportError as e:
        print(f"SKIP: python3-scapy is not installed ({e})")
        return SKIP
    for b in (dataplane, CONTROLPLANE, SLUICECTL):
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            return SKIP
    cp = None
    os.makedirs(RUN, exist_ok=True)
    os.environ["SLUICE_TB_DP_ARGS"] = (f"--new-flow-budget {BUDGET} "
                                       f"--new-flow-budget-burst {BUDGET}")
    try:
        up = testbed("up")
        print(up.stdout + up.stderr, end="")
        if not check(up.returncode == 0, "test bed up"):
            return 1
        with open(f"{RUN}/cp.yaml", "w") as f:
            f.write(CONFIG)
        driver = open(f"/run/sluice-testbed-{PREFIX}/driver").read().strip()
        print(f"dataplane driver: net_{driver}")
        cp = start_cp(driver == "af_xdp")
        synproxy_on()
        mid_flow_rst()
        client_rate()
        backend_caps()
        synproxy_auto()
        new_flow_budget()
    except subprocess.TimeoutExpired as e:
        check(False, f"timed out: {e.cmd}")
    finally:
        if cp is not None and cp.poll() is None:
            os.killpg(cp.pid, signal.SIGTERM)
            try:
                cp.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(cp.pid, signal.SIGKILL)
        if failures and os.path.exists(f"{RUN}/cp.log"):
            print("--- cp.log\n" + open(f"{RUN}/cp.log").read()[-1500:])
        down = testbed("down", timeout=60)
        print(down.stdout[-300:], end="")
        check(down.returncode == 0, "test bed down")
        run(["rm", "-rf", RUN, SHM + ".lock"])
        check(f"{PREFIX}-" not in run(["ip", "netns", "list"]).stdout, "no namespace left behind")
    print("FAILED:" if failures else "PASSED", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
