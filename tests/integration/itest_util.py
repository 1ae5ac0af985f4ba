"""Helpers shared by the integration tests: one failure list and check()
reporting, subprocess runs with captured text output, a free TCP port on
loopback, polling for a condition, and the scripts/testbed.sh driver for a
given prefix and build directory."""

import os
import socket
import subprocess
import time

failures = []


def check(cond, what):
    print(f"{'ok' if cond else 'FAIL'}: {what}", flush=True)
    if not cond:
        failures.append(what)
    return cond


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def run_testbed(script, prefix, build, *args, timeout=120):
    env = dict(os.environ, SLUICE_TB_PREFIX=prefix, SLUICE_BUILD_DIR=build)
    return run([script, *args], timeout=timeout, env=env)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
