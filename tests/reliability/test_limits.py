#!/usr/bin/env python3
"""revd at its limits (issue #11, defects 6 and 9, and --max-conns).

- At the fd limit (RLIMIT_NOFILE 64), connections revd has to drop are
  counted (rejected_fd_limit in the stop line) and logged, rate-limited;
  revd serves again once fds are free.
- A flood past --max-conns: the connections past it are closed at once and
  counted; those inside it are served.
- The default listen backlog follows the kernel's (net.core.somaxconn).
"""
import re
import subprocess
import time

from revdtest import Reply, Revd, connect, exchange, main, wait_until

WARN_RE = re.compile(r"(?i)(fd limit|file descriptor|open files|EMFILE|nofile)")


def hold(port, n):
    """n connections that send nothing yet."""
    return [connect(port, timeout=5) for _ in range(n)]


def ended_within(s, seconds):
    r = Reply(s)
    r.read(timeout=seconds)
    return r.end is not None and not r.data


def case_fd_limit():
    with Revd("--mode", "eof", nofile=64) as d:
        conns = hold(d.port, 120)
        time.sleep(1)  # revd accepts what it can
        dropped = sum(ended_within(s, 0.05) for s in conns)
        for s in conns:
            s.close()
        assert wait_until(lambda: exchange(d.port, "eof", b"after the flood")[1] == "complete", 5), \
            "revd does not serve again once its fds are free"
        st = d.stop_ok()
        log = d.text()
        warnings = [l for l in d.log if WARN_RE.search(l)]
        print("%d of 120 connections dropped; stats %s; warnings %r" % (dropped, st, warnings))
        assert dropped > 0, "no connection was dropped: the fd limit was not reached"
        assert st["rejected_fd_limit"] > 0 and st["rejected"] >= st["rejected_fd_limit"], \
            "connections dropped at the fd limit are not counted: %s" % st
        assert warnings, "nothing logged about the fd limit:\n%s" % log
        assert len(warnings) <= 10, "the fd-limit warning is not rate-limited: %d lines" % len(warnings)


def case_max_conns():
    with Revd("--mode", "eof", "--max-conns", 20) as d:
        inside = hold(d.port, 20)
        assert wait_until(lambda: d.fds() >= d.start_fds + 20, 5), "revd did not accept 20 connections"
        past = hold(d.port, 40)
        closed = [ended_within(s, 2) for s in past]
        assert all(closed), "%d of 40 connections past --max-conns were not closed" % closed.count(False)
        for i, s in enumerate(inside):
            msg = b"inside the limit %d" % i
            s.sendall(msg)
            s.shutdown(1)
            r = Reply(s)
            r.read(timeout=5)
            assert r.check(msg[::-1]) == "complete", "connection %d inside --max-conns not served" % i
        for s in inside + past:
            s.close()
        assert exchange(d.port, "eof", b"after")[1] == "complete"
        st = d.stop_ok()
        assert st["rejected_max_conns"] == 40 and st["rejected"] >= 40, st


def listen_backlog(port):
    """The listener's Send-Q in `ss -ltn`: its backlog."""
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], capture_output=True, text=True,
                         timeout=10).stdout.split()
    assert len(out) >= 3 and out[0] == "LISTEN", "ss shows no listener on port %d: %r" % (port, out)
    return int(out[2])


def case_backlog():
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    with Revd("--backlog", 100) as d:  # the reading is right: an explicit backlog shows
        assert listen_backlog(d.port) == min(100, somaxconn)
        d.stop_ok()
    with Revd() as d:
        got = listen_backlog(d.port)
        print("default backlog %d, somaxconn %d" % (got, somaxconn))
        assert got == min(somaxconn, 65535), \
            "default backlog %d, the kernel allows %d (somaxconn)" % (got, somaxconn)
        d.stop_ok()


if __name__ == "__main__":
    main(globals())
