"""Helpers shared by the test-bed integration tests: one failure list and
check() reporting, subprocess runs with captured text output, and the
scripts/testbed.sh driver for a given prefix and build directory."""

import os
import subprocess

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
