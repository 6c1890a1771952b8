#!/usr/bin/env python3
"""Operating revd: the real binary as systemd and an operator run it.

usage: test_ops.py CASE   (one of CASES below; meson runs each as a test)

Environment: REVD_BIN, REVC_BIN, REVBENCH_BIN; SOURCE_ROOT (the subproject
case).  Exit 0 when the case holds, 77 (meson: skipped) when a tool it needs
is missing, 1 otherwise.

Every case is bounded: revd is started with short timeouts, every wait has a
deadline, and whatever was started is stopped on the way out.
"""
import errno
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

REVD = os.environ.get("REVD_BIN", "revd")
REVBENCH = os.environ.get("REVBENCH_BIN", "revbench")
SKIP = 77

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


class Skip(Exception):
    pass


# ---- helpers ---------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Revd:
    """A running revd (or a wrapper that execs it): its stderr lines are
    collected by a thread; wait_for() waits for one matching a pattern."""

    def __init__(self, argv, env=None, pass_fds=(), stderr=None):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(argv, env=env, pass_fds=pass_fds,
                                     stdin=subprocess.DEVNULL,
                                     stderr=stderr or subprocess.PIPE)
        if stderr is None:
            threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()

    def _read(self, f):
        for raw in f:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF
            self.cond.notify_all()

    def wait_for(self, pattern, timeout=5.0):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self.cond:
            while True:
                for line in self.lines:
                    if line is not None and rx.search(line):
                        return rx.search(line)
                if None in self.lines:
                    raise AssertionError("revd ended before %r:\n%s" % (pattern, self.log()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r in 5 s:\n%s" % (pattern, self.log()))
                self.cond.wait(left)

    def log(self):
        return "\n".join(l for l in self.lines if l is not None)

    def port(self):
        return int(self.wait_for(r"listening on [\d.]+:(\d+)").group(1))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig (None: none, it was sent already) and waits for the exit."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("revd did not exit %d s after signal %d:\n%s"
                                 % (timeout, sig, self.log()))
        time.sleep(0.05)  # let the reader thread take the last lines
        return status

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def revd(*args, **kw):
    return Revd([REVD, *map(str, args)], **kw)


def exchange(addr, msg, half_close=True, timeout=5):
    """One exchange over TCP (port) or a Unix socket (path): the reply."""
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr if family == socket.AF_UNIX else ("127.0.0.1", addr))
        s.sendall(msg)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


def read_to_eof(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def http(port, method="GET", path="/metrics"):
    """(status, headers dict with lower-case names, body) of one request."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                   % (method, path)).encode())
        data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body.decode()


def with_metrics(*args):
    p = revd("--port", 0, "--metrics", "127.0.0.1:0", *args)
    mport = int(p.wait_for(r"metrics on http://127\.0\.0\.1:(\d+)/").group(1))
    return p, p.port(), mport


def metric(body, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    assert m, "no %s in:\n%s" % (name, body)
    return float(m.group(1))


def need(tool, package):
    path = shutil.which(tool)
    if not path:
        raise Skip("%s is not installed (Debian: apt-get install %s)" % (tool, package))
    return path


def need_systemd_support():
    out = subprocess.run([REVD, "--version"], capture_output=True, text=True).stdout
    if "systemd yes" not in out:
        raise Skip("revd was built without libsystemd (-Dsystemd=disabled or no "
                   "libsystemd-dev): %s" % out.strip())


def clean_exit(p):
    status = p.stop()
    assert status == 0, "revd exited %d:\n%s" % (status, p.log())


# ---- socket activation -----------------------------------------------------

def activated(listen, *args):
    need_systemd_support()
    tool = need("systemd-socket-activate", "systemd")
    return Revd([tool, "-l", listen, REVD, *map(str, args)])


def case_activation_tcp():
    """Two threads: the second accepts on a copy of the inherited socket."""
    port = free_port()
    p = activated("127.0.0.1:%d" % port, "--threads", 2)
    try:
        p.wait_for(r"Listening on 127\.0\.0\.1:%d" % port)  # the tool, before it execs revd
        # It execs revd at the first connection, which revd must then accept.
        assert exchange(port, b"activated") == b"detavitca"
        p.wait_for(r"listening on 127\.0\.0\.1:%d \(fd 3 from systemd socket activation\)" % port)
        for i in range(20):
            assert exchange(port, b"again %d" % i) == (b"again %d" % i)[::-1]
        assert "listening on 127.0.0.1:7342" not in p.log()
    finally:
        clean_exit(p)


def case_activation_unix():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "revd.sock")
        p = activated(path)
        try:
            p.wait_for(r"Listening on %s" % re.escape(path))
            assert exchange(path, b"over unix") == b"xinu revo"
            p.wait_for(r"listening on %s \(fd 3 from" % re.escape(path))
        finally:
            clean_exit(p)


# ---- readiness ---------------------------------------------------------------

def case_notify():
    need_systemd_support()
    with tempfile.TemporaryDirectory() as d, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ns:
        path = os.path.join(d, "notify")
        ns.bind(path)
        ns.settimeout(5)
        p = revd("--port", 0, env=dict(os.environ, NOTIFY_SOCKET=path))
        try:
            port = p.port()
            first = ns.recv(4096).decode()
            assert "READY=1" in first.split("\n"), first
            assert exchange(port, b"abc") == b"cba"
            status = ns.recv(4096).decode()  # the next tick, within a second
            assert re.match(r"STATUS=\d+ connections open, \d+ exchanges completed", status), status
        finally:
            clean_exit(p)
        states = []
        ns.settimeout(0.2)
        try:
            while True:
                states.append(ns.recv(4096).decode())
        except (BlockingIOError, TimeoutError):
            pass
        assert "STOPPING=1" in states, states


# ---- restarts under load -----------------------------------------------------

EXEC_WITH_LISTEN_FDS = """
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.close(fd)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"""


def case_restart():
    """As systemd restarts a socket-activated service: one listening socket,
    held by this process; revd A serves it; B starts on the same socket and A
    gets SIGTERM; then C and B; revbench runs across both restarts."""
    need_systemd_support()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(511)
    port = holder.getsockname()[1]
    fd = fcntl.fcntl(holder.fileno(), fcntl.F_DUPFD, 10)  # not 3 itself: moved to 3 below
    # LISTEN_PID must be revd's pid: the wrapper moves the socket to fd 3,
    # sets LISTEN_PID to its own pid and execs revd.
    wrapper = [sys.executable, "-c", EXEC_WITH_LISTEN_FDS, str(fd),
               REVD, "--mode", "eof", "--drain-timeout", "3000"]

    def start():
        p = Revd(wrapper, pass_fds=(fd,))
        p.wait_for(r"listening on 127\.0\.0\.1:%d \(fd 3" % port)
        return p

    current = start()
    bench = subprocess.Popen([REVBENCH, "--port", str(port), "--mode", "eof", "-c", "16",
                              "-d", "4", "-s", "16:2048", "--json", "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = []
    try:
        for _ in range(2):
            time.sleep(1.2)
            nxt = start()
            stopped.append((current, current.stop()))
            current = nxt
        out, err = bench.communicate(timeout=30)
    finally:
        if bench.poll() is None:
            bench.kill()
        stopped.append((current, current.stop()))
        holder.close()
        os.close(fd)
    assert bench.returncode == 0, "revbench exited %d: %s" % (bench.returncode, err)
    r = json.loads(out)
    print("revbench across two restarts: ok %d, errors %d, connect errors %d, mismatches %d"
          % (r["ok"], r["errors"], r["connect_errors"], r["mismatches"]))
    for p, status in stopped:
        assert status == 0, "a revd exited %d:\n%s" % (status, p.log())
    assert r["ok"] > 0 and r["errors"] == 0 and r["connect_errors"] == 0 and \
        r["mismatches"] == 0, r


# ---- the drain -------------------------------------------------------------

def case_drain():
    """An exchange under way when SIGTERM comes finishes (eof mode: the
    client half-closes during the drain), and revd says it drained."""
    p = revd("--port", 0, "--mode", "eof", "--drain-timeout", 3000)
    port = p.port()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"part one, ")
        time.sleep(0.1)
        p.proc.send_signal(signal.SIGTERM)
        p.wait_for(r"SIGTERM: closing")
        s.sendall(b"part two")
        s.shutdown(socket.SHUT_WR)
        reply = s.makefile("rb").read()
    assert reply == b"owt trap ,eno trap", reply
    status = p.stop(None)
    assert status == 0, "revd exited %d:\n%s" % (status, p.log())
    assert re.search(r"drained: every exchange in flight finished", p.log()), p.log()


def case_drain_cut():
    """An exchange that does not finish is cut short at --drain-timeout: revd
    exits 0 soon after, says how many were cut short, and the client sees a
    reset or an empty reply, never a reply that looks complete."""
    p = revd("--port", 0, "--mode", "eof", "--drain-timeout", 300, "--metrics", "127.0.0.1:0")
    port = p.port()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"never finished")
        time.sleep(0.1)
        start = time.monotonic()
        status = p.stop()
        took = time.monotonic() - start
        assert status == 0, "revd exited %d:\n%s" % (status, p.log())
        assert took < 2.0, "SIGTERM to exit took %.1f s with --drain-timeout 300" % took
        try:
            reply = s.recv(100)
        except ConnectionResetError:
            reply = b""
        assert reply == b"", reply
    assert re.search(r"warn: drain timeout \(300 ms\): 1 connections cut short", p.log()), p.log()
    # The library's own count (cut_short), in the stop line.
    assert re.search(r"stopped: .* cut_short=1 ", p.log()), p.log()


def case_drain_cut_threads():
    """With --threads, the drain line counts what every thread cut short,
    not only the main loop's servers."""
    p = revd("--port", 0, "--mode", "eof", "--drain-timeout", 300, "--threads", 2)
    port = p.port()
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    for s in clients:
        s.sendall(b"never finished")
    time.sleep(0.3)
    status = p.stop()
    for s in clients:
        s.close()
    assert status == 0, "revd exited %d:\n%s" % (status, p.log())
    assert re.search(r"stopped: .* cut_short=8 ", p.log()), p.log()
    assert re.search(r"warn: drain timeout \(300 ms\): 8 connections cut short", p.log()), p.log()


# ---- signals -----------------------------------------------------------------

def case_sighup():
    p = revd("--port", 0, "--log-level", "warn")
    try:
        port = p.port()
        assert exchange(port, b"before") == b"erofeb"
        for sig, name in ((signal.SIGHUP, "SIGHUP"), (signal.SIGUSR1, "SIGUSR1")):
            p.proc.send_signal(sig)
            line = p.wait_for(r"%s: status: \d+ connections open,.* completed=1 " % name).string
            assert re.match(TIMESTAMP + r" revd\[%d\] info: " % p.proc.pid, line), line
            assert p.proc.poll() is None, "revd died of %s" % name
        assert exchange(port, b"after") == b"retfa"
    finally:
        clean_exit(p)
    status_lines = [l for l in p.log().splitlines() if "status:" in l]
    assert len(status_lines) == 2, p.log()


# ---- log lines ---------------------------------------------------------------

def case_log_terminal():
    """On a terminal: timestamp with milliseconds, pid, level on every line."""
    master, slave = pty.openpty()
    p = Revd([REVD, "--port", "0", "--log-level", "debug"], stderr=slave)
    os.close(slave)
    text = b""
    deadline = time.monotonic() + 5
    try:
        while b"memory budget" not in text and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                text += os.read(master, 4096)
    finally:
        p.proc.send_signal(signal.SIGTERM)
        p.proc.wait(10)
        try:
            while select.select([master], [], [], 0.2)[0]:
                text += os.read(master, 4096)
        except OSError:
            pass  # EIO: the terminal's other side closed
        os.close(master)
    assert p.proc.returncode == 0
    lines = text.decode().replace("\r\n", "\n").strip().split("\n")
    assert len(lines) >= 4, lines
    rx = re.compile(TIMESTAMP + r" revd\[%d\] (error|warn|info|debug): \S" % p.proc.pid)
    for line in lines:
        assert rx.match(line), "not a log line: %r" % line
    assert any(" debug: " in l for l in lines) and any(" info: " in l for l in lines), lines


def journal_run(stream_matches):
    """revd with JOURNAL_STREAM naming its stderr (or not): its lines."""
    r, w = os.pipe()
    st = os.fstat(w)
    dev_ino = "%d:%d" % (st.st_dev, st.st_ino if stream_matches else st.st_ino + 1)
    env = dict(os.environ, JOURNAL_STREAM=dev_ino)
    p = Revd([REVD, "--port", "0"], env=env, stderr=w)
    os.close(w)
    p._thread = threading.Thread(target=p._read, args=(os.fdopen(r, "rb"),), daemon=True)
    p._thread.start()
    p.wait_for(r"listening on")
    status = p.stop()
    assert status == 0, p.log()
    return p.log().splitlines()


def case_log_journal():
    """Under systemd: sd-daemon priority prefixes, no timestamp; a stderr that
    is not the journal's stream (redirected) keeps the timestamps."""
    lines = journal_run(True)
    assert lines and all(re.match(r"<[3467]>[^<\d]", l) for l in lines), lines
    assert any(l.startswith("<6>listening on 127.0.0.1:") for l in lines), lines
    assert not any(re.search(TIMESTAMP, l) for l in lines), lines
    # An error is <3>: a port already taken.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r, w = os.pipe()
        st = os.fstat(w)
        run = subprocess.run([REVD, "--port", str(s.getsockname()[1])], stderr=w,
                             env=dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino)),
                             timeout=10)
        os.close(w)
        err = os.read(r, 4096).decode()
        os.close(r)
    assert run.returncode == 1 and err.startswith("<3>listen 127.0.0.1:"), (run.returncode, err)
    other = journal_run(False)
    assert all(re.match(TIMESTAMP, l) for l in other), other


def case_log_rate_limited():
    """A flood of rejections is one line a second with a count, not a line each."""
    # silent clients must reach revd to be rejected: no deferred accept
    p = revd("--port", 0, "--max-conns", 1, "--defer-accept", "off")
    port = p.port()
    held = socket.create_connection(("127.0.0.1", port))
    try:
        time.sleep(0.1)
        for _ in range(40):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                try:
                    s.recv(1)  # closed at once
                except ConnectionResetError:
                    pass
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            lines = [l for l in p.log().splitlines() if "rejected by --max-conns" in l]
            total = sum(int(re.search(r": (\d+) in the last", l).group(1)) for l in lines)
            if total >= 40:
                break
            time.sleep(0.1)
    finally:
        held.close()
        clean_exit(p)
    assert total == 40 and 1 <= len(lines) <= 3, lines
    assert all(re.search(r" info: rejected by --max-conns: \d+ in the last second$", l)
               for l in lines), lines


# ---- Unix sockets ------------------------------------------------------------

def case_unix_mode():
    with tempfile.TemporaryDirectory() as d:
        for args, want in (((), 0o660), (("--unix-mode", "0600"), 0o600)):
            path = os.path.join(d, "s.sock")
            p = revd("--unix", path, *args)
            try:
                p.wait_for(r"listening on %s \(mode %04o\)" % (re.escape(path), want))
                mode = stat.S_IMODE(os.stat(path).st_mode)
                assert mode == want, "%s: mode %o, want %o" % (args, mode, want)
                assert exchange(path, b"unix") == b"xinu"
            finally:
                clean_exit(p)
            assert not os.path.exists(path), "socket file left behind"
    run = subprocess.run([REVD, "--unix", "/tmp/x.sock", "--unix-mode", "999"],
                         capture_output=True, text=True, timeout=10)
    assert run.returncode == 2 and "invalid --unix-mode '999'" in run.stderr, run.stderr


def case_unix_live():
    """A socket somebody accepts on is in use: revd says so and leaves it."""
    with tempfile.TemporaryDirectory() as d, socket.socket(socket.AF_UNIX) as live:
        path = os.path.join(d, "s.sock")
        live.bind(path)
        live.listen()
        run = subprocess.run([REVD, "--unix", path], capture_output=True, text=True, timeout=10)
        assert run.returncode == 1, run
        assert "error: listen %s: address already in use" % path in run.stderr, run.stderr
        assert os.path.exists(path)


def case_unix_stale():
    """A socket file nobody accepts on (a revd that was killed) is replaced."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()  # the file stays
        p = revd("--unix", path)
        try:
            p.wait_for(r"listening on %s" % re.escape(path))
            assert exchange(path, b"fresh") == b"hserf"
        finally:
            clean_exit(p)


def case_unix_missing_dir():
    run = subprocess.run([REVD, "--unix", "/nonexistent-revd-dir/s.sock"],
                         capture_output=True, text=True, timeout=10)
    assert run.returncode == 1, run
    assert "listen /nonexistent-revd-dir/s.sock: no such file or directory" in run.stderr, \
        run.stderr


# ---- per-client limit --------------------------------------------------------

def case_per_ip():
    p, port, mport = with_metrics("--max-conns-per-ip", 2)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=3) as third:
            try:
                assert third.recv(1) == b"", "a third connection from one address was served"
            except ConnectionResetError:
                pass
        _, _, body = http(mport)
        assert metric(body, 'revd_connections_rejected_total{reason="max_conns_per_ip"}') == 1, body
        held.pop().close()
        time.sleep(0.1)
        assert exchange(port, b"room again") == b"niaga moor"
    finally:
        for s in held:
            s.close()
        clean_exit(p)


# ---- metrics -----------------------------------------------------------------

def case_metrics_http():
    p, port, mport = with_metrics()
    try:
        code, headers, body = http(mport)
        assert code == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        version = subprocess.run([REVD, "--version"], capture_output=True,
                                 text=True).stdout.split()[1]
        assert re.search(r'^revd_build_info\{version="%s"\} 1$' % re.escape(version), body, re.M), body
        code, headers, body = http(mport, "POST")
        assert code == 405 and headers.get("allow") == "GET, HEAD", (code, headers)
        assert headers["content-type"] == "text/plain; charset=utf-8", headers
        code, headers, body = http(mport, "GET", "/nope")
        assert code == 404 and "version=0.0.4" not in headers["content-type"], headers
    finally:
        clean_exit(p)


def case_promtool():
    promtool = need("promtool", "prometheus")
    p, port, mport = with_metrics()
    try:
        exchange(port, b"one")
        _, _, body = http(mport)
    finally:
        clean_exit(p)
    run = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, "promtool check metrics:\n%s%s\n%s" % (run.stdout, run.stderr, body)


def case_histogram():
    """revd_exchange_duration_seconds counts exactly the exchanges sent."""
    p, port, mport = with_metrics()
    try:
        for i in range(7):
            exchange(port, b"x" * (i + 1))
        _, _, body = http(mport)
    finally:
        clean_exit(p)
    assert "# TYPE revd_exchange_duration_seconds histogram" in body, body
    assert metric(body, "revd_exchange_duration_seconds_count") == 7, body
    assert metric(body, 'revd_exchange_duration_seconds_bucket{le="+Inf"}') == 7, body
    buckets = [float(v) for v in
               re.findall(r'^revd_exchange_duration_seconds_bucket\{le="[^"]+"\} (\S+)$', body, re.M)]
    assert buckets == sorted(buckets) and len(buckets) > 5, buckets


# ---- the systemd units -------------------------------------------------------

def case_units():
    """systemd-analyze verify on the units as installed (ExecStart pointing at
    this build's revd)."""
    tool = need("systemd-analyze", "systemd")
    build_unit = os.environ["REVD_UNIT"]
    with tempfile.TemporaryDirectory() as d:
        with open(build_unit) as f:
            text = f.read()
        text = re.sub(r"^ExecStart=\S+/revd", "ExecStart=" + os.path.abspath(REVD), text,
                      flags=re.M)
        version = subprocess.run([REVD, "--version"], capture_output=True, text=True).stdout
        want = "notify" if "systemd yes" in version else "exec"
        assert re.search(r"^Type=%s$" % want, text, re.M), "%s: not Type=%s" % (version, want)
        with open(os.path.join(d, "revd.service"), "w") as f:
            f.write(text)
        shutil.copy(os.environ["REVD_SOCKET_UNIT"], d)
        run = subprocess.run([tool, "verify", "--man=no", os.path.join(d, "revd.socket"),
                              os.path.join(d, "revd.service")],
                             capture_output=True, text=True, timeout=60)
        problems = [l for l in (run.stdout + run.stderr).splitlines()
                    if "revd" in l and "Failed to" not in l]
        assert run.returncode == 0 and not problems, run.stdout + run.stderr


# ---- as a meson subproject ---------------------------------------------------

HOST_MESON = """project('host', 'c', version: '9.9.9')
revd_dep = dependency('revd', fallback: ['revd', 'revd_dep'])
executable('host', 'host.c', dependencies: revd_dep, install: true)
"""
HOST_C = """#include <stdio.h>
#include <revd.h>
int main(void) { printf("%s\\n", revd_version()); return 0; }
"""


def case_subproject():
    """A host project with revd in subprojects/ builds and installs the
    library (and its header and pkg-config file) and nothing else, and
    revd_version() is the project's version."""
    root = os.environ["SOURCE_ROOT"]
    with open(os.path.join(root, "meson.build")) as f:
        want = re.search(r"version:\s*'([^']+)'", f.read()).group(1)
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "subprojects"))
        # A copy without build directories, as a wrap would fetch it.
        shutil.copytree(root, os.path.join(d, "subprojects", "revd"), symlinks=True,
                        ignore=shutil.ignore_patterns("build*", ".git"))
        with open(os.path.join(d, "meson.build"), "w") as f:
            f.write(HOST_MESON)
        with open(os.path.join(d, "host.c"), "w") as f:
            f.write(HOST_C)
        build = os.path.join(d, "b")
        for cmd in (["meson", "setup", build, d, "--prefix=/usr", "--wrap-mode=nodownload"],
                    ["ninja", "-C", build],
                    ["meson", "install", "-C", build, "--destdir", os.path.join(d, "dest")]):
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
            assert run.returncode == 0, "%s:\n%s%s" % (" ".join(cmd), run.stdout, run.stderr)
        installed = sorted(os.path.relpath(os.path.join(dp, f), os.path.join(d, "dest"))
                           for dp, _, fs in os.walk(os.path.join(d, "dest")) for f in fs)
        print("installed:", *installed, sep="\n  ")
        allowed = re.compile(r"usr/(bin/host|include/revd\.h|lib/([\w-]+/)?(librevd\.so[.\d]*"
                             r"|pkgconfig/revd\.pc))$")
        extra = [p for p in installed if not allowed.match(p)]
        assert not extra, "installed besides the library: %s" % extra
        assert any("librevd.so" in p for p in installed), installed
        built = os.listdir(os.path.join(build, "subprojects", "revd"))
        for name in ("tests", "bench", "man", "contrib"):
            assert name not in built, "the subproject built %s/: %s" % (name, built)
        run = subprocess.run([os.path.join(build, "host")], capture_output=True, text=True,
                             env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(
                                 build, "subprojects", "revd")), timeout=10)
        assert run.stdout.strip() == want, (run.stdout, want)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main(argv):
    if len(argv) != 2 or argv[1] not in CASES:
        print("usage: test_ops.py CASE, one of: %s" % " ".join(sorted(CASES)), file=sys.stderr)
        return 2
    name = argv[1]
    try:
        CASES[name]()
    except Skip as e:
        print("SKIP %s: %s" % (name, e))
        return SKIP
    print("ok %s" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
