#!/usr/bin/env python3
"""Chunk mode near 32 KiB on loopback (issue #11, defect 8).

The classic client sends its message in one write, without half-closing,
and waits.  Every message up to 64 KiB sent in one write must come back
whole: revd reads while the socket has data, up to 64 KiB, not just what
its first read returned.  Loopback pushes a write past half the peer's
window (about 32 KiB) in two segments, the second held (Nagle) until revd
acknowledges the first: under load it comes milliseconds later, so revd
waits a moment for the rest of a message that ends on a whole segment.
"""
import random
import signal
import socket
import time

from revdtest import Reply, Revd, connect, in_threads, main, payload

# The split is a race of microseconds (revd reads the first segment before
# the second lands): a few exchanges in a thousand show it, so the test
# makes ten thousand, four clients at a time (about 10 s).
rng = random.Random(8)
SIZES = list(range(32700, 32801)) * 3 + [65535, 65536] * 10 + \
    [rng.randint(60000, 65536) for _ in range(10000)]
CLIENTS = 4


def one_write_exchange(port, msg, half_close=False, during=None):
    """Sends msg in one write, as the classic client does (half-closing
    after it if asked), calls during() if given, and reads the reply to its
    end."""
    with connect(port, timeout=5) as s:
        time.sleep(0.002)  # revd has accepted and waits for the first byte
        s.sendall(msg)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        if during:
            during()
        r = Reply(s)
        r.read(timeout=5)
    return r


def case_chunk_one_write():
    with Revd() as d:
        def client(i):
            short = []
            for n in range(i, len(SIZES), CLIENTS):
                size = SIZES[n]
                msg = payload(size, n)
                r = one_write_exchange(d.port, msg)
                assert r.end == "eof", "message of %d bytes: no clean end (%s)" % (size, r.end)
                if bytes(r.data) != msg[::-1]:
                    assert msg[::-1].endswith(bytes(r.data)), "message of %d bytes: wrong reply" % size
                    short.append((size, len(r.data)))
            return short

        short = sum(in_threads(client, CLIENTS), [])
        print("%d messages, %d answered in part" % (len(SIZES), len(short)))
        assert not short, "%d of %d one-write messages answered in part (size, reply bytes): %s" % (
            len(short), len(SIZES), short[:10])
        d.stop_ok()


# On loopback Linux cuts a write into segments of half the window revd
# offers (65,483 bytes): a message that is a whole number of them may have
# more on its way, and revd waits a moment for it.  When nothing more
# comes, the message is all there is.
WHOLE_SEGMENTS = (32741, 65482)


def case_chunk_whole_segments():
    with Revd() as d:
        for size in WHOLE_SEGMENTS:
            for half_close in (False, True):
                msg = payload(size, size)
                r = one_write_exchange(d.port, msg, half_close)
                assert r.end == "eof" and bytes(r.data) == msg[::-1], (
                    "message of %d bytes%s: %d bytes back, then %s" % (
                        size, " and a half-close" if half_close else "", len(r.data), r.end))
        st = d.stop_ok()
        assert st["completed"] == 2 * len(WHOLE_SEGMENTS), st


def case_chunk_sigterm_while_waiting():
    # SIGTERM while revd waits for the rest of a message: the message is
    # still answered, whole, and revd exits 0.
    with Revd() as d:
        msg = payload(WHOLE_SEGMENTS[0], 1)
        r = one_write_exchange(d.port, msg, during=lambda: d.send_signal(signal.SIGTERM))
        assert r.end == "eof" and bytes(r.data) == msg[::-1], (
            "%d bytes back, then %s" % (len(r.data), r.end))
        st = d.exit_ok()
        assert st["completed"] == 1, st


if __name__ == "__main__":
    main(globals())
