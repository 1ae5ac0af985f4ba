#!/usr/bin/python3
"""The TRex / pktgen-dpdk files generated from the pktgen profiles are valid
and carry the profile's traffic.

For every profile in tests/pktgen/*.yaml, scripts/gen-lab-profiles.py is run
into a temporary directory and:
  * each generated file is identical to the one committed under scripts/trex/
    and scripts/pktgen-dpdk/ (regenerate with
    `scripts/gen-lab-profiles.py tests/pktgen/*.yaml --out scripts`);
  * Python files compile (py_compile); Lua files pass `luac -p` (lua5.4,
    installed by scripts/setup.sh; without it a structural check: balanced
    quotes and parentheses, every statement a pktgen call or a comment);
  * the literals in the files match the profile: for every stateless item the
    VIP, the destination port, every frame size and the packets-per-second
    share of each size (TRex) / the rate as a comment and percentage
    (pktgen-dpdk), the client range or the spoofed range; for every churn
    item the VIP, port, cps, request and response sizes and the backends'
    port (ASTF);
  * --sluice-args names every service and backend and a static neighbour with
    the backend's 02:b0:<IPv4> MAC.

usage: pktgen_lab_profiles_test.py SOURCE_ROOT   (exit 0 pass, 1 fail)
"""

import ast
import filecmp
import glob
import ipaddress
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
gen = os.path.join(root, "scripts", "gen-lab-profiles.py")
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def literals(path):
    """Every string and number constant of a Python file."""
    tree = ast.parse(open(path).read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
            out.add(node.value)
    return out


def lua_ok(path):
    luac = shutil.which("luac") or shutil.which("luac5.4")
    if luac:
        return subprocess.run([luac, "-p", path], capture_output=True).returncode == 0
    text = open(path).read()
    if text.count("(") != text.count(")") or text.count('"') % 2:
        return False
    for line in text.splitlines():
        s = line.strip()
        if s and not (s.startswith("--") or s.startswith("pktgen.") or s.startswith("local p =")
                      or s.startswith("package.path") or s.startswith("require")):
            return False
    return True


def main():
    profiles = sorted(glob.glob(os.path.join(root, "tests", "pktgen", "*.yaml")))
    check(len(profiles) >= 5, f"{len(profiles)} profiles in tests/pktgen")
    work = tempfile.mkdtemp(prefix="sluice-lab-")
    try:
        r = subprocess.run([sys.executable, gen, *profiles, "--out", work],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"gen-lab-profiles.py runs ({r.stderr.strip()})")
        for sub in ("trex", "pktgen-dpdk"):
            for f in sorted(os.listdir(os.path.join(work, sub))):
                committed = os.path.join(root, "scripts", sub, f)
                check(os.path.exists(committed) and filecmp.cmp(committed, os.path.join(work, sub, f),
                                                                shallow=False),
                      f"scripts/{sub}/{f} is up to date")
        for path in profiles:
            check_profile(path, work)
        bad = os.path.join(work, "bad.yaml")
        with open(bad, "w") as f:
            f.write("name: bad\nservices: []\ntraffic: []\n")
        r = subprocess.run([sys.executable, gen, bad, "--sluice-args"], capture_output=True, text=True)
        check(r.returncode == 2 and "services" in r.stderr, "a profile without services exits 2 naming the field")
    finally:
        shutil.rmtree(work)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all checks passed")
    return 0


def check_profile(path, work):
    prof = yaml.safe_load(open(path))
    name = prof["name"]
    services = {s["name"]: s for s in prof["services"]}
    stl = os.path.join(work, "trex", f"{name}_stl.py")
    lua = os.path.join(work, "pktgen-dpdk", f"{name}.lua")
    astf = os.path.join(work, "trex", f"{name}_astf.py")
    for f in (stl, astf):
        if os.path.exists(f):
            try:
                py_compile.compile(f, doraise=True, cfile=os.path.join(work, "x.pyc"))
                check(True, f"{os.path.basename(f)} compiles")
            except py_compile.PyCompileError as e:
                check(False, f"{os.path.basename(f)} compiles: {e}")
    check(lua_ok(lua), f"{os.path.basename(lua)} is valid Lua")
    stl_lits = literals(stl)
    lua_text = open(lua).read()
    total = float(prof.get("rate_pps", 0))
    weights = sum(float(t.get("weight", 0)) for t in prof["traffic"])
    has_churn = False
    for i, t in enumerate(prof["traffic"]):
        svc = services[t["service"]]
        what = f"{name} traffic[{i}] {t['type']}"
        if t["type"] == "churn":
            has_churn = True
            lits = literals(astf)
            bport = int(str(svc["backends"][0]).partition(":")[2] or svc["port"])
            for v, label in ((svc["vip"], "VIP"), (int(svc["port"]), "port"),
                             (float(t["conns_per_s"]), "cps"),
                             (int(t.get("request_bytes", 64)), "request size"),
                             (int(t.get("response_bytes", 256)), "response size"),
                             (int(t.get("requests", 1)), "requests"), (bport, "backend port")):
                check(v in lits, f"{what}: ASTF carries the {label} {v!r}")
            continue
        if t.get("direction", "forward") == "reverse":
            continue
        rate = float(t.get("rate_pps", 0))
        if total > 0 and float(t.get("weight", 0)) > 0:
            rate = total * float(t["weight"]) / weights
        frame = t.get("frame", 64)
        sizes = ([64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 594, 64] if frame == "imix"
                 else frame if isinstance(frame, list) else [frame])
        check(svc["vip"] in stl_lits and int(svc["port"]) in stl_lits,
              f"{what}: STL carries VIP {svc['vip']} and port {svc['port']}")
        for size in set(sizes):
            share = sizes.count(size) / len(sizes)
            check(int(size) in stl_lits, f"{what}: STL carries frame size {size}")
            if rate > 0:
                check(rate * share in stl_lits, f"{what}: STL stream of {size} B at {rate * share!r} pps")
        if t["type"] == "established":
            net = ipaddress.IPv4Network(prof.get("clients", "198.19.0.0/16"))
            check(str(net[0]) in stl_lits or any(isinstance(x, str) and x.startswith(str(net[0])[:6])
                                                 for x in stl_lits),
                  f"{what}: STL sources in the client range {net}")
            check(int(t.get("flows", 1)) in stl_lits, f"{what}: STL limits to {t.get('flows', 1)} flows")
        else:
            net = ipaddress.IPv4Network(prof.get("spoofed", "100.64.0.0/10"))
            check(str(net[0]) in stl_lits and str(net[-1]) in stl_lits,
                  f"{what}: STL spoofs sources over {net}")
        block = re.search(rf"-- traffic\[{i}\] .*?(?=\n-- traffic\[|\npktgen.start)", lua_text, re.S)
        if check(block is not None, f"{what}: pktgen-dpdk block present"):
            b = block.group(0)
            check(f'"{svc["vip"]}"' in b and f'"start", {svc["port"]})' in b,
                  f"{what}: pktgen-dpdk carries VIP and port")
            check(f'"size", {sizes[0]})' in b, f"{what}: pktgen-dpdk frame size {sizes[0]}")
            if rate > 0:
                check(f"{rate:.0f} pps" in b, f"{what}: pktgen-dpdk rate {rate:.0f} pps")
    check(has_churn == os.path.exists(astf), f"{name}: ASTF file exactly when churn items exist")

    r = subprocess.run([sys.executable, gen, path, "--sluice-args"], capture_output=True, text=True)
    if check(r.returncode == 0, f"{name}: --sluice-args"):
        args = json.loads(r.stdout)
        pub = " ".join(args["publish"])
        for s in prof["services"]:
            check(f"{s.get('proto', 'tcp')}:{s['vip']}:{s['port']}:{s.get('mode', 'nat')}" in pub,
                  f"{name}: publishes service {s['name']}")
            for b in s["backends"]:
                addr = str(b).partition(":")[0]
                mac = "02:b0:" + ":".join(f"{x:02x}" for x in ipaddress.IPv4Address(addr).packed)
                check(f"{addr}={mac}" in args["dataplane"], f"{name}: neighbour {addr}={mac}")


if __name__ == "__main__":
    sys.exit(main())
