#!/usr/bin/python3
"""Hitless dataplane restart (sluice-dataplane --flow-snapshot) under traffic,
on the ECMP test bed (scripts/testbed-ecmp.sh) with one instance, per mode
(`nat`, `dsr-ipip`); the control plane keeps announcing through the restart
(--restart-hold-ms):

  * long-lived TCP echo connections through the VIP and a prober opening new
    HTTP connections every 50 ms;
  * `testbed-ecmp.sh restart 1`: SIGTERM to the dataplane (it saves every flow
    to the snapshot), a new dataplane adopts them before taking traffic, the
    control plane refills the new vip_steer program's maps;
  * no held connection breaks — none is reset, errs or pauses longer than
    STALL_S (for `nat` they would without the snapshot: the new process would
    answer their next segment with an RST) — the new process
    adopted at least one flow per held connection and refused none, new
    connections fail only around the restart;
  * nat only, a control run: the same restart with the snapshot deleted
    breaks held connections (the new process resets them).

usage: ecmp_restart_test.py SLUICE_CONTROLPLANE SLUICECTL [MODE...]
Exit 0 pass, 1 fail, 77 skip (not root, bird or binaries missing).
"""

import os
import re
import shutil
import sys
import time

import ecmp_failover_test as bed
from itest_util import check, failures

SKIP = 77
HELD = 100  # per mode; two modes keep the test near 1.5 minutes on 2 loaded cores
STALL_S = 30.0


def cp_log_text():
    return open(f"{bed.STATE}/controlplane1.log").read()


def restart_under_traffic(mode, lbs):
    hops = list(range(1, lbs + 1))
    r = bed.tb("up", env={"SLUICE_TB_LBS": str(lbs), "SLUICE_TB_MODE": mode}, timeout=180)
    if not check(r.returncode == 0, f"{mode}: testbed-ecmp.sh up ({lbs} instance(s))"):
        return None
    if not check(bed.wait_hops(hops, 40) is not None,
                 f"{mode}: the router routes the VIP to {hops}"):
        print(open(f"{bed.STATE}/controlplane1.log").read()[-1500:])
        return None
    bed.HELD_NOW[0] = HELD
    # The restart gap (old process's teardown, new process's EAL and AF_XDP
    # start-up: seconds on this loaded VM) plus TCP's retransmission back-off
    # is a pause, not a break: a connection is broken when it is reset or
    # errs, or pauses longer than STALL_S.
    t = bed.Traffic(HELD, STALL_S)
    check(t.ready == HELD, f"{mode}: {HELD} long-lived connections opened ({t.ready})")
    time.sleep(1)
    t0 = time.time()
    r = bed.tb("restart", 1, timeout=60)
    took = time.time() - t0
    check(r.returncode == 0, f"{mode}: dataplane restarted in {took:.2f} s ({r.stdout.strip()})")
    back = bed.wait_hops(hops, 20)
    check(back is not None, f"{mode}: the VIP is routed to {hops} after the restart")
    window = (t0, time.time() + 2.0)
    time.sleep(2)
    held, probed = t.finish()
    print(f"{mode}: failed new connections at: {[round(f['t'] - t0, 3) for f in probed['failed']]}"
          f" s after the restart began")
    failed_new = bed.report(f"{mode}: dataplane restart", held, probed, window)
    print(f"{mode}: the longest pause of a held connection: {held['max_stall_s']} s "
          f"(restart took {took:.2f} s)")
    log = open(f"{bed.STATE}/dataplane1.log").read()
    saved = re.findall(r"saved (\d+) flow\(s\)", log)
    adopted = re.findall(r"adopted (\d+) of (\d+) flow\(s\)([^\n]*)", log)
    # With several instances lb1 holds its ECMP share of the connections.
    want = HELD if lbs == 1 else HELD // (2 * lbs)
    check(bool(saved) and int(saved[-1]) >= want,
          f"{mode}: the stopping dataplane saved its flows ({saved[-1:]} >= {want})")
    check(bool(adopted) and int(adopted[-1][0]) >= want and adopted[-1][0] == adopted[-1][1],
          f"{mode}: the new dataplane adopted every saved flow ({adopted[-1:]})")
    log_cp = cp_log_text()
    since = log_cp[log_cp.rfind("dataplane restarting (flow snapshot"):]
    check("announcement held" in since and "BGP: withdraw" not in since,
          f"{mode}: lb1's control plane kept announcing through the restart "
          f"(--restart-hold-ms): {since[:160]!r}")
    cp_log = open(f"{bed.STATE}/controlplane1.log").read()
    check("maps refilled" in cp_log, f"{mode}: the control plane refilled the new vip_steer's maps")
    if mode == "nat":
        # Control run: the same restart without the snapshot breaks full-NAT
        # connections (the new process resets them), so the check above can fail.
        bed.HELD_NOW[0] = 20
        t = bed.Traffic(20, STALL_S)
        time.sleep(1)
        bed.tb("restart", 1, env={"SLUICE_TB_DROP_SNAPSHOT": "1"}, timeout=60)
        bed.wait_hops(hops, 20)
        time.sleep(2)
        held_ctl, _ = t.finish()
        check(len(held_ctl["broken"]) > 0,
              f"{mode}: control run without the snapshot: {len(held_ctl['broken'])} of "
              f"{held_ctl['held']} held connections broken "
              f"({[b['error'] for b in held_ctl['broken'][:2]]})")
    bed.tb("down", timeout=120)
    return took, failed_new, int(adopted[-1][0]) if adopted else 0, held["max_stall_s"]


def main():
    if os.geteuid() != 0:
        print("skip: needs root (network namespaces, XDP)")
        return SKIP
    if not shutil.which("bird") or not shutil.which("birdc"):
        print("skip: bird (Debian bird2) is not installed; scripts/setup.sh installs it")
        return SKIP
    controlplane, bed.SLUICECTL = sys.argv[1], sys.argv[2]
    # One instance each: with three, lb1's nat connections are still reset
    # when its old dataplane exits (docs/high-availability.md, "Limits").
    modes = [(m, 1) for m in sys.argv[3:]] or [("nat", 1), ("dsr-ipip", 1)]
    bed.BUILD = os.path.dirname(os.path.dirname(os.path.abspath(controlplane)))
    if not os.path.exists(os.path.join(bed.BUILD, "bpf", "vip_steer.bpf.o")):
        print("skip: bpf/ was not built (no libbpf/clang)")
        return SKIP
    figures = []
    t_start = time.time()
    try:
        for mode, lbs in modes:
            got = restart_under_traffic(mode, lbs)
            if got:
                figures.append(f"{mode}: restart_s={got[0]:.2f} adopted={got[2]} "
                               f"max_stall_s={got[3]} new_conn_failed={got[1]}")
    finally:
        bed.tb("down", timeout=120)
    print(f"FIGURES: {'; '.join(figures)} (held {HELD} per mode, "
          f"{time.time() - t_start:.0f} s in all)")
    print("PASS" if not failures else f"FAIL: {len(failures)} check(s): {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
