#!/usr/bin/env python3
"""The idle timeout closes silent clients, and only them (issue #11,
defects 2 and 3, and slowloris).

- A reader that keeps reading a big reply, slowly, is alive: progress is
  measured at the socket, so it gets the whole reply however long it takes.
- A loop stalled longer than the timeout (SIGSTOP) must not close, once it
  runs again, connections whose bytes are already waiting in the socket.
- Clients that send slower than the timeout are closed after it, while the
  other clients keep being served.
"""
import signal
import socket
import time

from revdtest import (MiB, Reply, Revd, connect, exchange, in_threads, line_session, main,
                      payload)


def case_slow_reader():
    # 4 MiB at 512 KiB/s: about 8 s of steady reading, 8 idle timeouts.
    with Revd("--mode", "eof", "--idle-timeout", 1000) as d:
        msg = payload(4 * MiB)
        s = connect(d.port, rcvbuf=16 * 1024)
        s.sendall(msg)
        s.shutdown(socket.SHUT_WR)
        r = Reply(s)
        t = time.monotonic()
        r.read(rate=512 * 1024, timeout=5)
        print("read %d of %d bytes in %.1f s, then %s" % (len(r.data), len(msg), time.monotonic() - t, r.end))
        assert r.check(msg[::-1]) == "complete", "the slow reader did not get its whole reply (%s)" % r.end
        st = d.stop_ok()
        assert st["timeouts"] == 0, "a live reader was timed out: %s" % st


def case_loop_stall():
    # 8 line clients, a line every 0.5 s each; revd stopped for 3.5 s (the
    # timeout is 2 s: a client starved of CPU on a busy machine still sends
    # well within it) in the middle; their lines wait in the sockets.
    clients, lines = 8, 12
    with Revd("--mode", "line", "--idle-timeout", 2000) as d:
        def client(i):
            return line_session(d.port, [b"client %d line %d\n" % (i, n) for n in range(lines)],
                                interval=0.5)

        def stall(_):
            time.sleep(1.5)
            d.send_signal(signal.SIGSTOP)
            time.sleep(3.5)
            d.send_signal(signal.SIGCONT)

        answered = in_threads(lambda i: client(i) if i < clients else stall(i), clients + 1)[:clients]
        print("replies per client:", answered)
        assert answered == [lines] * clients, \
            "after the stall, clients got %s of %d replies" % (answered, lines)
        st = d.stop_ok()
        assert st["timeouts"] == 0, "live clients timed out after the stall: %s" % st


def case_slowloris():
    idle_s = 1.0
    with Revd("--mode", "eof", "--idle-timeout", int(idle_s * 1000)) as d:
        def slow_sender(_):
            """Sends a byte every 1.5 s; returns how long after its last byte revd closed it."""
            with connect(d.port) as s:
                r = Reply(s)
                for _ in range(4):
                    s.sendall(b"x")
                    sent = time.monotonic()
                    r.read(seconds=1.5)
                    if r.end:
                        return time.monotonic() - sent
            return None

        def served(_):
            """Exchanges for 4 s; returns the slowest one's seconds."""
            worst, end = 0, time.monotonic() + 4
            while time.monotonic() < end:
                t = time.monotonic()
                _, outcome = exchange(d.port, "eof", payload(1000, int(t * 1000)))
                assert outcome == "complete", "a normal client got %s" % outcome
                worst = max(worst, time.monotonic() - t)
            return worst

        slow, normal = 20, 4
        res = in_threads(lambda i: slow_sender(i) if i < slow else served(i), slow + normal)
        closed_after, worst = res[:slow], max(res[slow:])
        print("slow senders closed after", ["%.2f" % t if t else None for t in closed_after])
        print("slowest normal exchange %.3f s" % worst)
        assert all(t is not None and idle_s * 0.8 <= t <= idle_s + 0.5 for t in closed_after), \
            "slow senders not closed about --idle-timeout after their last byte: %s" % closed_after
        assert worst < 0.5, "normal clients waited %.2f s behind the slow ones" % worst
        st = d.stop_ok()
        assert st["timeouts"] >= slow, "timeouts not counted: %s" % st


if __name__ == "__main__":
    main(globals())
