#!/usr/bin/env python3
"""Docs that run word for word: every shell block of README.md and
bench/README.md marked runnable is run, so the docs cannot drift from the
programs again.

usage: test_docs_runnable.py SOURCE_ROOT PROGRAM...

A block is marked by a line `<!-- runnable -->` right before its ```sh fence
(blank lines between are allowed).  Each block runs as a person would paste
it: bash with `set -euo pipefail`, the directories of PROGRAM... (revd, revc,
revbench of this build) first on PATH, in a fresh temporary directory where
`bench` points at the source tree's bench/.  The blocks use the default port
7342 as written; so that nothing else on the machine can hold it, each block
runs in a network namespace of its own (`unshare -n`, loopback only).  Where
no namespace can be made (not root), a block runs in the host's namespace if
7342 is free, and the test is skipped (exit 77) if it is not.

Each block is bounded (BLOCK_TIMEOUT seconds) and its whole process group is
killed afterwards, so a block that fails halfway leaves no revd behind.
Python standard library only.  Exit 0 when every block ran with status 0,
1 otherwise (each failure with the block's output), 77 when skipped.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DOCS = ["README.md", "bench/README.md"]
BLOCK_TIMEOUT = 90
MARK = "<!-- runnable -->"


def runnable_blocks(path):
    """[(line number, block text)] of the marked ```sh blocks in path."""
    blocks = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARK:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or lines[j].strip() not in ("```sh", "```bash"):
            raise SystemExit(f"{path}:{i + 1}: {MARK} is not followed by a ```sh block")
        k = j + 1
        while k < len(lines) and lines[k].strip() != "```":
            k += 1
        blocks.append((j + 2, "\n".join(lines[j + 1:k]) + "\n"))
        i = k + 1
    return blocks


def can_unshare():
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    r = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10)
    return r.returncode == 0


def port_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def run_block(text, src, path_dirs, netns):
    with tempfile.TemporaryDirectory(prefix="revd-docs-") as cwd:
        os.symlink(os.path.join(src, "bench"), os.path.join(cwd, "bench"))
        script = os.path.join(cwd, ".block.sh")
        with open(script, "w") as f:
            f.write("set -euo pipefail\n" + text)
        env = dict(os.environ, PATH=os.pathsep.join(path_dirs + [os.environ["PATH"]]))
        cmd = ["bash", script]
        if netns:
            cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
            status = proc.returncode
        except subprocess.TimeoutExpired:
            status = None
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what the block left running
        except ProcessLookupError:
            pass
        if status is None:
            out, _ = proc.communicate()
            status = "timeout after %ds" % BLOCK_TIMEOUT
        return status, out, time.monotonic() - t0


def main(argv):
    if len(argv) < 3 or not os.path.isdir(argv[1]):
        print(__doc__.strip().splitlines()[4], file=sys.stderr)
        return 2
    src = argv[1]
    path_dirs = sorted({os.path.dirname(os.path.abspath(p)) for p in argv[2:]})
    netns = can_unshare()
    if not netns and not port_free(7342):
        print("SKIP: no network namespace (unshare -n needs root) and port 7342 is in use")
        return 77
    failures = 0
    count = 0
    for doc in DOCS:
        for line, text in runnable_blocks(os.path.join(src, doc)):
            count += 1
            status, out, took = run_block(text, src, path_dirs, netns)
            if status == 0:
                print(f"ok {doc}:{line} ({took:.1f}s)")
            else:
                failures += 1
                print(f"FAIL {doc}:{line}: exit {status} after {took:.1f}s\n"
                      + re.sub(r"(?m)^", "    ", out.rstrip()))
    if count == 0:
        print("FAIL: no runnable blocks found")
        return 1
    print(f"{count - failures} of {count} runnable blocks ran cleanly"
          + ("" if netns else " (in the host's network namespace)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
