#!/usr/bin/env python3
"""SIGTERM (issue #11, defect 7, and shutdown under load).

- The totals revd logs at exit include the exchanges that finished during
  the drain.
- A message waiting in the socket, unread, when SIGTERM comes is answered
  (or the client sees an error), not dropped behind a clean EOF.
- SIGTERM under load, in every mode: every reply a client gets is either
  complete and correct, or ends in an error on the client's side; never a
  short reply with a clean EOF.  revd exits 0.
"""
import random
import signal
import socket
import threading
import time

from revdtest import (MiB, Reply, Revd, connect, eof_request, in_threads, main, payload,
                      random_exchange)


def case_drain_counted():
    with Revd("--mode", "eof") as d:
        r, want = eof_request(d.port, 8 * MiB)
        r.read(nbytes=64 * 1024)  # the reply is under way ...
        d.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        r.read(timeout=5)         # ... and finishes during the drain
        assert r.check(want) == "complete", "the reply in flight at SIGTERM did not finish"
        st = d.exit_ok()
        assert st["completed"] == 1, "the exchange finished during the drain is not counted: %s" % st


def case_sigterm_unread():
    # Accepted, its message waiting in the socket, not yet read when SIGTERM
    # comes (revd stopped meanwhile): the message is owed a reply, or an error.
    for mode in ("chunk", "eof"):
        with Revd("--mode", mode) as d:
            d.send_signal(signal.SIGSTOP)
            msg = payload(1000)
            s = connect(d.port)
            s.sendall(msg)
            if mode == "eof":
                s.shutdown(socket.SHUT_WR)
            d.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            d.send_signal(signal.SIGCONT)
            r = Reply(s)
            r.read(timeout=5)
            print("%s mode: %d of %d bytes, then %s" % (mode, len(r.data), len(msg), r.end))
            assert r.check(msg[::-1]) in ("complete", "error"), (
                "%s mode: neither answered nor closed within 5 s" % mode)
            d.exit_ok()


def sigterm_load(mode):
    with Revd("--mode", mode) as d:
        signalled = threading.Event()

        def client(i):
            rng = random.Random(i)
            seen = {}
            end = time.monotonic() + 10
            while time.monotonic() < end:
                outcome = random_exchange(d.port, mode, rng)[0]
                seen[outcome] = seen.get(outcome, 0) + 1
                if outcome == "refused" and signalled.is_set():
                    break  # the listener is gone
            return seen

        def stopper(_):
            time.sleep(1.5)
            signalled.set()
            d.send_signal(signal.SIGTERM)

        res = in_threads(lambda i: stopper(i) if i == 8 else client(i), 9)[:8]
        total = {}
        for seen in res:
            for k, v in seen.items():
                total[k] = total.get(k, 0) + v
        print("%s mode, outcomes: %s" % (mode, total))
        assert total.get("complete", 0) > 0, "no exchange completed before SIGTERM"
        assert set(total) <= {"complete", "error", "refused"}, total
        d.exit_ok(15)


def case_sigterm_chunk():
    sigterm_load("chunk")


def case_sigterm_eof():
    sigterm_load("eof")


def case_sigterm_line():
    sigterm_load("line")


if __name__ == "__main__":
    main(globals())
