#!/usr/bin/env python3
"""A reply revd gives up on must never look complete (issue #11, defect 1).

Whenever revd stops sending a reply it has not finished (the drain after
SIGTERM runs out, the idle timeout closes a reader that stalled), the
client must see an error (a reset: ECONNRESET), never a clean EOF after a
part of the reply; and revd counts it (cut_short in its stop line).
"""
import signal
import time

from revdtest import MiB, Revd, eof_request, main


def case_cut_short_drain():
    drain_s = 1
    with Revd("--mode", "eof", "--drain-timeout", drain_s * 1000) as d:
        r, want = eof_request(d.port, 64 * MiB)
        r.read(nbytes=256 * 1024)
        d.send_signal(signal.SIGTERM)
        r.read(seconds=drain_s + 2, rate=MiB)  # far too slow for 64 MiB
        r.read(timeout=5)  # revd gave up: the rest of what reached us, then the end
        print("client read %d of %d bytes, then %s" % (len(r.data), len(want), r.end))
        assert r.check(want) == "error", "the reply was not cut at the drain timeout"
        st = d.exit_ok(drain_s + 10)
        assert st["cut_short"] >= 1, "the cut reply is not counted: %s" % st


def case_cut_short_idle():
    with Revd("--mode", "eof", "--idle-timeout", 2000) as d:
        r, want = eof_request(d.port, 32 * MiB)
        r.read(seconds=3, rate=8 * 1024)  # a slow reader ...
        time.sleep(4)                     # ... that stops reading: idle now
        r.read(timeout=5)
        print("client read %d of %d bytes, then %s" % (len(r.data), len(want), r.end))
        assert r.check(want) == "error", "the stalled reader was not closed by the idle timeout"
        st = d.stop_ok()
        assert st["timeouts"] >= 1 and st["cut_short"] >= 1, "not counted: %s" % st


if __name__ == "__main__":
    main(globals())
