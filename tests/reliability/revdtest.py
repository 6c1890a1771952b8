"""Shared helpers of the reliability suite: the real revd started on a free
port, clients on real sockets, what revd logs and what /proc says about it.

Every wait here is bounded; a test that goes wrong fails, it never hangs.
Environment (set by tests/reliability/meson.build): REVD_BIN, REVC_BIN,
REVBENCH_BIN.
"""
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

REVD = os.environ["REVD_BIN"]
# Under AddressSanitizer (CI's sanitizer build sets ASAN_OPTIONS) memory is
# shadowed and freed blocks are quarantined: RSS says nothing there, and
# LeakSanitizer checks revd's memory at exit instead.
CHECK_RSS = "ASAN_OPTIONS" not in os.environ

MiB = 1024 * 1024


class Revd:
    """One revd process on 127.0.0.1, port 0.  nofile: RLIMIT_NOFILE for it."""

    def __init__(self, *args, nofile=None):
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.args = [str(a) for a in args]
        self.proc = subprocess.Popen([REVD, "--port", "0", *self.args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=limit if nofile else None)
        self.pid = self.proc.pid
        self.log = []
        for line in self.proc.stderr:  # the listening line comes first (or revd exits)
            self.log.append(line)
            m = re.search(r"listening on [\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            self.proc.wait(5)
            raise AssertionError("revd %s did not say where it listens (exit %s): %s"
                                 % (" ".join(self.args), self.proc.returncode, "".join(self.log)))
        self.reader = threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True)
        self.reader.start()
        self.start_rss = self.rss_kib()
        self.start_fds = self.fds()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def wait(self, timeout):
        """Waits for revd to exit; returns its exit status."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("revd did not exit within %d s:\n%s" % (timeout, self.text()))
        self.reader.join(5)
        return status

    def stop_ok(self, timeout=20):
        """SIGTERM; revd must exit 0.  Returns the counters of its stop line."""
        self.proc.send_signal(signal.SIGTERM)
        return self.exit_ok(timeout)

    def exit_ok(self, timeout=20):
        """revd, already signalled, must exit 0.  Returns its stop line's counters."""
        status = self.wait(timeout)
        assert status == 0, "revd exited %d after SIGTERM:\n%s" % (status, self.text())
        return self.stats()

    def text(self):
        return "".join(self.log)

    def stats(self):
        """The counters of the last line revd logged them in (the stop line), as a dict."""
        lines = [l for l in self.log if " accepted=" in l]
        assert lines, "revd logged no stats line:\n%s" % self.text()
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}

    def accept_queue(self):
        """Connections waiting in the kernel for revd to accept them (the
        listening socket's rx_queue in /proc/net/tcp)."""
        port = "%04X" % self.port
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(":" + port) and fields[3] == "0A":  # LISTEN
                    return int(fields[4].split(":")[1], 16)
        return 0

    def check_resources(self, rss_allowance_kib):
        """After the load, once revd is idle (nothing left in its accept
        queue, its fds back to what it had idle, lingering closes waited
        out): RSS back within rss_allowance_kib of its start, within a few
        seconds (revd gives memory back once idle)."""
        idle = wait_until(lambda: self.accept_queue() == 0 and self.fds() <= self.start_fds, 10)
        assert idle, "revd holds %d fds after the load (%d before), %d waiting to be accepted" % (
            self.fds(), self.start_fds, self.accept_queue())
        limit = self.start_rss + rss_allowance_kib
        rss_ok = not CHECK_RSS or wait_until(lambda: self.rss_kib() <= limit, 3)
        rss = self.rss_kib()
        print("revd RSS %d KiB (start %d KiB), %d fds" % (rss, self.start_rss, self.fds()))
        assert rss_ok, "revd RSS %d KiB after the load, %d KiB at start" % (rss, self.start_rss)


def wait_until(pred, timeout, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def payload(n, seed=0):
    """n bytes of deterministic noise (binary: every byte value)."""
    return random.Random(seed).randbytes(n)


def connect(port, rcvbuf=None, timeout=10):
    """A TCP connection to revd; rcvbuf (set before connect) keeps the
    client's window small, so a reply can not hide in the client's kernel."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def reset_close(s):
    """Closes with SO_LINGER 0: the kernel sends a reset, not a FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def send_all(s, data):
    """sendall that reports a refused send instead of raising: True if sent."""
    try:
        s.sendall(data)
        return True
    except (ConnectionResetError, BrokenPipeError):
        return False


class Reply:
    """Reads a reply off a socket, keeping it and how it ended:
    'eof' (a clean FIN), 'reset' (an error such as ECONNRESET) or None (not yet)."""

    def __init__(self, sock):
        self.sock = sock
        self.data = bytearray()
        self.end = None

    def _recv(self, n, timeout):
        self.sock.settimeout(timeout)
        try:
            got = self.sock.recv(n)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            self.end = "reset"
            return False
        if not got:
            self.end = "eof"
            return False
        self.data += got
        return True

    def read(self, nbytes=None, seconds=None, rate=None, timeout=10):
        """Reads until the end, or nbytes more, or for `seconds`, at most
        `rate` bytes a second.  Returns how many bytes it read."""
        start, before = time.monotonic(), len(self.data)
        stop_at = start + seconds if seconds is not None else None
        step = max(1024, rate // 8) if rate else 1 << 20
        while self.end is None:
            now = time.monotonic()
            if stop_at is not None and now >= stop_at:
                break
            want = step if nbytes is None else min(step, before + nbytes - len(self.data))
            if want <= 0:
                break
            wait = timeout if stop_at is None else max(0.01, min(timeout, stop_at - now))
            if not self._recv(want, wait) and self.end is None and stop_at is None:
                break  # nothing came for `timeout` seconds
            if rate:  # pace: never ahead of `rate` bytes a second
                ahead = (len(self.data) - before) / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(min(ahead, 1.0) if stop_at is None else
                               max(0, min(ahead, stop_at - time.monotonic())))
        return len(self.data) - before

    def check(self, want):
        """The reply so far is a prefix of `want`; if it ended cleanly it is
        all of it.  Returns 'complete', 'error' (ended by an error) or
        'open' (not ended).  A short reply ending in a clean EOF fails."""
        got = bytes(self.data)
        assert got == want[:len(got)], "reply differs from the reversed message at byte %d" % next(
            i for i in range(len(got)) if got[i] != want[i])
        if self.end == "eof":
            assert len(got) == len(want), ("short reply ended with a clean EOF: %d of %d bytes "
                                           "(the client takes it for complete)" % (len(got), len(want)))
            return "complete"
        return "error" if self.end == "reset" else "open"


def eof_request(port, size, rcvbuf=64 * 1024):
    """Sends an eof-mode message of `size` bytes and half-closes; returns
    (a Reply to read, the reply expected).  The client's receive buffer is
    small so the reply waits in revd, not in the client's kernel."""
    msg = payload(size)
    s = connect(port, rcvbuf=rcvbuf)
    s.sendall(msg)
    s.shutdown(socket.SHUT_WR)
    return Reply(s), msg[::-1]


def exchange(port, mode, msg, timeout=10):
    """One chunk or eof exchange as revc does it (send, half-close, read to
    the end).  Returns (Reply, outcome) where outcome is Reply.check's, or
    'refused' when the connect or the send failed."""
    try:
        s = connect(port, timeout=timeout)
    except OSError:
        return None, "refused"
    with s:
        if not send_all(s, msg):
            return None, "refused"
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            return None, "refused"
        r = Reply(s)
        r.read(timeout=timeout)
        want = msg[::-1]
        if mode == "chunk" and r.end == "eof" and 0 < len(r.data) < len(msg):
            want = msg[:len(r.data)][::-1]  # chunk mode answers the first read (never empty)
        return r, r.check(want)


def line_session(port, lines, interval=0, timeout=10):
    """Sends each line (bytes ending in b'\\n') in turn on one connection,
    `interval` seconds apart, and checks each reply.  Returns how many came
    back; a reply line that is wrong or cut short fails."""
    with connect(port, timeout=timeout) as s:
        r = Reply(s)
        for i, line in enumerate(lines):
            if i and interval:
                time.sleep(interval)
            if not send_all(s, line):
                return i
            want = line[:-1][::-1] + b"\n"
            start = len(r.data)
            while len(r.data) - start < len(want) and r.end is None:
                if not r._recv(len(want) - (len(r.data) - start), timeout):
                    break
            got = bytes(r.data[start:])
            if len(got) < len(want) and r.end is not None:
                assert got == want[:len(got)], "line %d: wrong reply %r" % (i, got[:80])
                assert not got, "line %d: reply cut short (%d of %d bytes)" % (i, len(got), len(want))
                return i
            assert got == want, "line %d: reply %r, expected %r" % (i, got[:80], want[:80])
        return len(lines)


def random_exchange(port, mode, rng):
    """One exchange of a random size in `mode`.  Returns (outcome, replies):
    outcome is Reply.check's or 'refused'; replies is how many came back
    whole (line mode: up to 20 lines on one connection, each a reply)."""
    if mode == "line":
        lines = [payload(rng.randint(0, 2000), rng.random()).replace(b"\n", b".") + b"\n"
                 for _ in range(rng.randint(1, 20))]
        try:
            answered = line_session(port, lines)
        except (ConnectionRefusedError, ConnectionResetError):
            # Refused, or reset inside connect(): when revd closes its
            # listener (SIGTERM), the kernel resets the handshakes still
            # in its queue.  A reset later in the session is read as an
            # error by line_session, not raised.
            return "refused", 0
        return "complete" if answered == len(lines) else "error", answered
    size = rng.randint(1, 16 * 1024) if mode == "chunk" else rng.randint(0, 2 * MiB)
    outcome = exchange(port, mode, payload(size, rng.random()))[1]
    return outcome, int(outcome == "complete")


def in_threads(fn, n):
    """Runs fn(i) in n threads; returns their results; re-raises the first failure."""
    results, errors = [None] * n, []

    def run(i):
        try:
            results[i] = fn(i)
        except BaseException as e:  # noqa: B902 - handed to the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def main(namespace):
    """Runs the case named by argv[1] (a function case_NAME in namespace)."""
    cases = {k[5:]: v for k, v in namespace.items() if k.startswith("case_")}
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        sys.exit("usage: %s CASE (%s)" % (sys.argv[0], ", ".join(sorted(cases))))
    cases[sys.argv[1]]()
    print("ok")
