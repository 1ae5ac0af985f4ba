#!/usr/bin/python3
"""Turns one sluice-pktgen profile (YAML) into the equivalent lab files.

    gen-lab-profiles.py PROFILE.yaml... --out DIR
        DIR/trex/NAME_stl.py      TRex stateless profile (established items, floods)
        DIR/trex/NAME_astf.py     TRex advanced-stateful profile (churn items), if any
        DIR/pktgen-dpdk/NAME.lua  pktgen-dpdk script (established items, floods)
    (scripts/trex and scripts/pktgen-dpdk hold these for tests/pktgen/*.yaml:
     scripts/gen-lab-profiles.py tests/pktgen/*.yaml --out scripts)
    gen-lab-profiles.py PROFILE.yaml --sluice-args
        one JSON object: the publish_tables arguments and the dataplane's
        --neigh / --nat-pool / --encap-src4 options the profile needs

The profile format is the one sluice-pktgen reads (docs/benchmarking.md);
defaults here must match dataplane/pktgen/profile.cc. Every generated file
carries the profile's addresses, ports, rates and frame sizes as literals
(tests/integration/pktgen_lab_profiles_test.py checks that). Exit 0 on
success, 2 for a bad profile (one line on stderr).
"""

import argparse
import ipaddress
import json
import os
import sys

import yaml

IMIX = [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 594, 64]
CLIENT_PORT_BASE = 1024
CLIENT_PORTS = 64512
HEADERS = {"tcp": 54, "udp": 42}  # Ethernet + IPv4 + L4, no FCS


class ProfileError(Exception):
    pass


def backend_mac(addr):
    """The MAC sluice-pktgen answers for a backend: 02:b0 + the IPv4 address."""
    b = ipaddress.IPv4Address(addr).packed
    return "02:b0:" + ":".join(f"{x:02x}" for x in b)


def parse_backend(text, port):
    addr, _, p = str(text).partition(":")
    ipaddress.IPv4Address(addr)
    return addr, int(p) if p else port


def load(path):
    with open(path) as f:
        root = yaml.safe_load(f)
    if not isinstance(root, dict):
        raise ProfileError(f"{path}: expected a mapping")
    prof = {
        "name": str(root.get("name", "unnamed")),
        "duration_s": float(root.get("duration_s", 5)),
        "rate_pps": float(root.get("rate_pps", 0)),
        "clients": ipaddress.IPv4Network(root.get("clients", "198.19.0.0/16")),
        "spoofed": ipaddress.IPv4Network(root.get("spoofed", "100.64.0.0/10")),
        "nat_pool": [],
        "nat_ports": "1024-65535",
        "encap_src4": "172.16.0.0/16",
        "services": {},
        "items": [],
    }
    bal = root.get("balancer") or {}
    prof["nat_pool"] = [str(ipaddress.IPv4Address(a)) for a in bal.get("nat_pool", [])]
    prof["nat_ports"] = str(bal.get("nat_ports", prof["nat_ports"]))
    prof["encap_src4"] = str(ipaddress.IPv4Network(bal.get("encap_src4", prof["encap_src4"])))
    for s in root.get("services") or []:
        port = int(s["port"])
        svc = {
            "name": s["name"],
            "vip": str(ipaddress.IPv4Address(s["vip"])),
            "port": port,
            "proto": s.get("proto", "tcp"),
            "mode": s.get("mode", "nat"),
            "gue_port": int(s.get("gue_port", 6080)),
            "backends": [parse_backend(b, port) for b in s["backends"]],
        }
        prof["services"][svc["name"]] = svc
    if not prof["services"]:
        raise ProfileError(f"{path}: services: expected a non-empty list")
    flow_next = 0
    for i, t in enumerate(root.get("traffic") or []):
        if t.get("service") not in prof["services"]:
            raise ProfileError(f"{path}: traffic[{i}].service: no service named '{t.get('service')}'")
        frame = t.get("frame", 64)
        sizes = IMIX if frame == "imix" else ([int(x) for x in frame] if isinstance(frame, list) else [int(frame)])
        item = {
            "type": t["type"],
            "service": t["service"],
            "weight": float(t.get("weight", 0)),
            "rate": float(t.get("rate_pps", t.get("conns_per_s", 0))),
            "flows": int(t.get("flows", 1)),
            "direction": t.get("direction", "forward"),
            "sizes": sizes,
            "requests": int(t.get("requests", 1)),
            "request_bytes": int(t.get("request_bytes", 64)),
            "response_bytes": int(t.get("response_bytes", 256)),
            "close": t.get("close", "fin"),
            "flow_base": 0,
        }
        if item["type"] == "established":
            item["flow_base"] = flow_next
            flow_next += item["flows"]
        prof["items"].append(item)
    if not prof["items"]:
        raise ProfileError(f"{path}: traffic: expected a non-empty list of items")
    if prof["rate_pps"] > 0:
        total = sum(it["weight"] for it in prof["items"])
        for it in prof["items"]:
            if it["weight"] > 0:
                it["rate"] = prof["rate_pps"] * it["weight"] / total
    return prof


def client_range(prof, item):
    """First and last client address and the port range an established item uses."""
    net = prof["clients"]
    size = net.num_addresses
    first = item["flow_base"]
    last = first + item["flows"] - 1
    if item["flows"] >= size:
        a0, a1 = net[0], net[-1]
    else:
        a0, a1 = net[first % size], net[last % size]
    p0 = CLIENT_PORT_BASE + first // size
    p1 = CLIENT_PORT_BASE + last // size
    return str(a0), str(a1), p0, p1


def sluice_args(prof):
    publish, neigh = [], {}
    for svc in prof["services"].values():
        publish += ["--service", f"{svc['proto']}:{svc['vip']}:{svc['port']}:{svc['mode']}"]
        for addr, port in svc["backends"]:
            publish += ["--backend", f"{addr}:{port}"]
            neigh[addr] = backend_mac(addr)
    dp = []
    for addr, mac in sorted(neigh.items()):
        dp += ["--neigh", f"{addr}={mac}"]
    for a in prof["nat_pool"]:
        dp += ["--nat-pool", a]
    dp += ["--nat-ports", prof["nat_ports"], "--encap-src4", prof["encap_src4"]]
    return {"publish": publish, "dataplane": dp}


# --- TRex STL --------------------------------------------------------------

def stl_stream(prof, item, idx):
    svc = prof["services"][item["service"]]
    proto = svc["proto"]
    rate = item["rate"]
    lines = []
    if item["type"] == "established":
        a0, a1, p0, p1 = client_range(prof, item)
        flags = '"A"'
        vm = (f'STLScVmRaw([STLVmTupleGen(ip_min="{a0}", ip_max="{a1}", port_min={p0}, '
              f'port_max={p1}, limit_flows={item["flows"]}, name="t{idx}"), '
              f'STLVmWrFlowVar(fv_name="t{idx}.ip", pkt_offset="IP.src"), '
              f'STLVmWrFlowVar(fv_name="t{idx}.port", pkt_offset="{proto.upper()}.sport"), '
              f'STLVmFixIpv4(offset="IP")])')
        src = a0
        sport = p0
    else:
        sp = prof["spoofed"]
        flags = '"S"' if item["type"] == "syn-flood" else '"A"'
        vm = (f'STLScVmRaw([STLVmFlowVar(name="s{idx}", min_value="{sp[0]}", max_value="{sp[-1]}", '
              f'size=4, op="random"), STLVmFlowVar(name="p{idx}", min_value={CLIENT_PORT_BASE}, '
              f'max_value={CLIENT_PORT_BASE + CLIENT_PORTS - 1}, size=2, op="random"), '
              f'STLVmWrFlowVar(fv_name="s{idx}", pkt_offset="IP.src"), '
              f'STLVmWrFlowVar(fv_name="p{idx}", pkt_offset="{proto.upper()}.sport"), '
              f'STLVmFixIpv4(offset="IP")])')
        src = str(sp[0])
        sport = CLIENT_PORT_BASE
    l4 = (f'TCP(sport={sport}, dport={svc["port"]}, flags={flags})' if proto == "tcp"
          else f'UDP(sport={sport}, dport={svc["port"]})')
    # One stream per distinct frame size, rates split as the sizes repeat.
    sizes = item["sizes"]
    for size in sorted(set(sizes)):
        share = sizes.count(size) / len(sizes)
        pps = rate * share
        mode = f"STLTXCont(pps={pps!r})" if rate > 0 else "STLTXCont(percentage=100)"
        lines.append(
            f"        # traffic[{idx}] {item['type']} -> {svc['vip']}:{svc['port']} ({svc['mode']}), "
            f"{size}-byte frames\n"
            f"        base = Ether() / IP(src=\"{src}\", dst=\"{svc['vip']}\", ttl=64, flags=\"DF\") / {l4}\n"
            f"        pad = max(0, {size} - 4 - len(base)) * b\"\\x00\"\n"
            f"        streams.append(STLStream(packet=STLPktBuilder(pkt=base / pad, vm={vm}),\n"
            f"                                 mode={mode}))\n")
    return "".join(lines)


def gen_stl(prof, src_path):
    body = "".join(stl_stream(prof, it, i) for i, it in enumerate(prof["items"])
                   if it["type"] != "churn" and it["direction"] != "reverse")
    return f'''# TRex stateless profile generated by scripts/gen-lab-profiles.py from
# {os.path.basename(src_path)} (profile "{prof['name']}"). Do not edit: regenerate.
# Run:  ./t-rex-64 -i   then   trex-console> start -f {prof['name']}_stl.py -p 0 -d {prof['duration_s']:g}
# Rates are packets per second per stream (frame sizes include the FCS).
from trex_stl_lib.api import *  # noqa: F401,F403


class SluiceProfile(object):
    def get_streams(self, direction=0, **kwargs):
        streams = []
{body or "        pass  # no stateless items in this profile"}
        return streams


def register():
    return SluiceProfile()
'''


def gen_astf(prof, src_path):
    churn = [it for it in prof["items"] if it["type"] == "churn"]
    if not churn:
        return None
    temps = []
    for i, it in enumerate(churn):
        svc = prof["services"][it["service"]]
        net = prof["clients"]
        backends = [b for b, _ in svc["backends"]]
        bport = svc["backends"][0][1]
        close = "prog_c.reset()" if it["close"] == "rst" else "pass  # FIN after the last exchange"
        temps.append(f'''        # churn -> {svc['vip']}:{svc['port']} ({svc['mode']}): {it['requests']} x ({it['request_bytes']} B request, {it['response_bytes']} B response)
        ip_gen = ASTFIPGen(glob=ASTFIPGenGlobal(ip_offset="1.0.0.0"),
                           dist_client=ASTFIPGenDist(ip_range=["{net[0]}", "{net[-1]}"], distribution="seq"),
                           dist_server=ASTFIPGenDist(ip_range=["{svc['vip']}", "{svc['vip']}"], distribution="seq"))
        prog_c = ASTFProgram()
        prog_s = ASTFProgram()
        for _ in range({it['requests']}):
            prog_c.send(b"q" * {it['request_bytes']})
            prog_c.recv({it['response_bytes']})
            prog_s.recv({it['request_bytes']})
            prog_s.send(b"r" * {it['response_bytes']})
        {close}
        # The server side sees the backends ({", ".join(backends)}) on port {bport} behind the balancer.
        templates.append(ASTFTemplate(
            client_template=ASTFTCPClientTemplate(program=prog_c, ip_gen=ip_gen, port={svc['port']}, cps={it['rate']!r}),
            server_template=ASTFTCPServerTemplate(program=prog_s, assoc=ASTFAssociationRule(port={bport}))))
''')
    return f'''# TRex advanced-stateful (ASTF) profile generated by scripts/gen-lab-profiles.py
# from {os.path.basename(src_path)} (profile "{prof['name']}"). Do not edit: regenerate.
# Run:  ./t-rex-64 -i --astf   then   trex-console> start -f {prof['name']}_astf.py -d {prof['duration_s']:g}
# cps = new connections per second.
from trex.astf.api import *  # noqa: F401,F403


class SluiceChurn(object):
    def get_profile(self, **kwargs):
        templates = []
{"".join(temps)}
        return ASTFProfile(default_ip_gen=ip_gen, templates=templates)


def register():
    return SluiceChurn()
'''


def gen_lua(prof, src_path, line_gbps=10.0):
    blocks = []
    port = 0
    for i, it in enumerate(prof["items"]):
        if it["type"] == "churn" or it["direction"] == "reverse":
            continue
        svc = prof["services"][it["service"]]
        size = it["sizes"][0]
        # pktgen-dpdk takes a percentage of line rate: 64 B at 10 Gb/s is
        # 14.88 Mpps (20 bytes of preamble and gap per frame).
        line_pps = line_gbps * 1e9 / ((size + 20) * 8)
        pct = 100.0 if it["rate"] <= 0 else min(100.0, 100.0 * it["rate"] / line_pps)
        if it["type"] == "established":
            a0, a1, p0, p1 = client_range(prof, it)
        else:
            sp = prof["spoofed"]
            a0, a1, p0, p1 = str(sp[0]), str(sp[-1]), CLIENT_PORT_BASE, CLIENT_PORT_BASE + CLIENT_PORTS - 1
        flags = "syn" if it["type"] == "syn-flood" else "ack"
        blocks.append(f'''-- traffic[{i}] {it['type']} -> {svc['vip']}:{svc['port']} ({svc['mode']}), {size}-byte frames, {it['rate']:.0f} pps
local p = "{port}"
pktgen.set(p, "size", {size})
pktgen.set(p, "rate", {pct:.4f}) -- {it['rate']:.0f} pps of {line_pps:.0f} at {line_gbps:g} Gb/s
pktgen.set_proto(p, "{svc['proto']}")
pktgen.dst_ip(p, "start", "{svc['vip']}")
pktgen.dst_ip(p, "inc", "0.0.0.0")
pktgen.dst_ip(p, "min", "{svc['vip']}")
pktgen.dst_ip(p, "max", "{svc['vip']}")
pktgen.src_ip(p, "start", "{a0}")
pktgen.src_ip(p, "inc", "0.0.0.1")
pktgen.src_ip(p, "min", "{a0}")
pktgen.src_ip(p, "max", "{a1}")
pktgen.dst_port(p, "start", {svc['port']})
pktgen.dst_port(p, "inc", 0)
pktgen.dst_port(p, "min", {svc['port']})
pktgen.dst_port(p, "max", {svc['port']})
pktgen.src_port(p, "start", {p0})
pktgen.src_port(p, "inc", 1)
pktgen.src_port(p, "min", {p0})
pktgen.src_port(p, "max", {p1})
pktgen.pkt_size(p, "start", {size})
pktgen.pkt_size(p, "min", {size})
pktgen.pkt_size(p, "max", {size})
-- TCP flags wanted: {flags} (pktgen-dpdk sends ACK by default; set the range page's tcp flags where the version supports it)
pktgen.set_range(p, "on")
''')
        port += 1
    ports = ",".join(str(i) for i in range(max(port, 1)))
    return f'''-- pktgen-dpdk script generated by scripts/gen-lab-profiles.py from
-- {os.path.basename(src_path)} (profile "{prof['name']}"). Do not edit: regenerate.
-- Run:  pktgen -l 0-2 -n 4 -- -P -m "[1].0" -f {prof['name']}.lua
-- pktgen-dpdk has one stream per port: item k uses port k. Churn items need
-- TCP state and are only in the TRex ASTF profile.
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

{"".join(blocks)}
pktgen.start("{ports}")
pktgen.delay({int(prof['duration_s'] * 1000)})
pktgen.stop("{ports}")
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profiles", nargs="+", metavar="PROFILE")
    ap.add_argument("--out", help="directory for the TRex and pktgen-dpdk files")
    ap.add_argument("--sluice-args", action="store_true",
                    help="print the publish_tables and dataplane arguments as JSON")
    ap.add_argument("--line-gbps", type=float, default=10.0,
                    help="line rate pktgen-dpdk percentages refer to (default 10)")
    a = ap.parse_args()
    if a.sluice_args and len(a.profiles) != 1:
        ap.error("--sluice-args takes one profile")
    for path in a.profiles:
        try:
            prof = load(path)
        except (ProfileError, KeyError, ValueError, TypeError, OSError, yaml.YAMLError) as e:
            print(f"gen-lab-profiles: {path}: {e}", file=sys.stderr)
            return 2
        if a.sluice_args:
            print(json.dumps(sluice_args(prof)))
        if a.out:
            files = {os.path.join("trex", f"{prof['name']}_stl.py"): gen_stl(prof, path),
                     os.path.join("pktgen-dpdk", f"{prof['name']}.lua"): gen_lua(prof, path, a.line_gbps)}
            astf = gen_astf(prof, path)
            if astf:
                files[os.path.join("trex", f"{prof['name']}_astf.py")] = astf
            for name, text in files.items():
                target = os.path.join(a.out, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as f:
                    f.write(text)
                print(target)
    if not a.sluice_args and not a.out:
        ap.error("give --out DIR and/or --sluice-args")
    return 0


if __name__ == "__main__":
    sys.exit(main())
