#!/usr/bin/env python3
"""Stress: the real revd under revbench load in every mode, with more
clients than a user would start by hand.  Each case checks what an operator
would: every reply verified (no mismatch, no error), revd's memory stays
bounded, and revd still exits 0 on SIGTERM afterwards.

Usage: test_stress.py CASE  (chunk, eof, line, churn).  Environment:
REVD_BIN, REVBENCH_BIN.  Bounded: each case runs a fixed count of exchanges.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading

REVD = os.environ["REVD_BIN"]
REVBENCH = os.environ["REVBENCH_BIN"]
RSS_LIMIT_KIB = 256 * 1024  # far above what these loads need: catches a leak per exchange
# Under AddressSanitizer (CI's second build sets ASAN_OPTIONS) memory is
# shadowed and freed blocks are quarantined, so RSS says nothing; LeakSanitizer
# checks revd's memory at exit instead.
CHECK_RSS = "ASAN_OPTIONS" not in os.environ


def start_revd(*args):
    proc = subprocess.Popen([REVD, "--port", "0", *args], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"listening on [\d.]+:(\d+)", line)
    assert m, "revd did not say where it listens: %r" % line
    log = []
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    return proc, int(m.group(1)), log


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench(port, *args):
    p = subprocess.run([REVBENCH, "--port", str(port), "--json", "--no-progress", *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["mismatches"] == 0 and r["errors"] == 0 and r["connect_errors"] == 0, r
    return r


def run(revd_args, *bench_runs):
    """Runs each load in turn against one revd; returns its RSS after each."""
    proc, port, log = start_revd(*revd_args)
    seen = []
    try:
        for args in bench_runs:
            r = bench(port, *args)
            print("revbench %s: ok %d, %.0f/s" % (" ".join(map(str, args)), r["ok"], r["rate"]))
            rss = rss_kib(proc.pid)
            print("revd RSS %d KiB" % rss)
            assert not CHECK_RSS or rss < RSS_LIMIT_KIB, "revd uses %d KiB after the load" % rss
            seen.append(rss)
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(10)
    assert status == 0, "revd exited %d: %s" % (status, "".join(log))
    return seen


def case_chunk():
    run(["--threads", "2"], ["-c", 256, "-n", 30000, "-t", 2, "-s", "13:4096"])


def case_eof():
    run(["--mode", "eof"], ["--mode", "eof", "-c", 64, "-n", 2000, "-s", "1:1m"])


def case_line():
    run(["--mode", "line"], ["--mode", "line", "--lines", 500, "-c", 128, "-n", 40000, "-s", "1:2000"])


def case_churn():
    # The same daemon through several loads in a row: memory must not grow
    # from one to the next (conns are reused, buffers freed).
    rss = run(["--mode", "eof"], *[["--mode", "eof", "-c", 100, "-n", 3000, "-s", "1:64k"]] * 4)
    assert not CHECK_RSS or rss[-1] <= rss[0] + 1024, "revd grew from %d to %d KiB over the same load" % (rss[0], rss[-1])


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("ok")
