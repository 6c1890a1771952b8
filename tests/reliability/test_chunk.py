#!/usr/bin/env python3
"""Chunk mode near 32 KiB on loopback (issue #11, defect 8).

The classic client sends its message in one write, without half-closing,
and waits.  Every message up to 64 KiB sent in one write must come back
whole: revd reads while the socket has data, up to 64 KiB, not just what
its first read returned.  Loopback pushes a write past half the peer's
window (about 32 KiB) in two segments; revd, already waiting on the
connection, can wake between them.
"""
import random
import time

from revdtest import Reply, Revd, connect, in_threads, main, payload

# The split is a race of microseconds (revd reads the first segment before
# the second lands): a few exchanges in a thousand show it, so the test
# makes ten thousand, four clients at a time (about 10 s).
rng = random.Random(8)
SIZES = list(range(32700, 32801)) * 3 + [65535, 65536] * 10 + \
    [rng.randint(60000, 65536) for _ in range(10000)]
CLIENTS = 4


def case_chunk_one_write():
    with Revd() as d:
        def client(i):
            short = []
            for n in range(i, len(SIZES), CLIENTS):
                size = SIZES[n]
                msg = payload(size, n)
                with connect(d.port, timeout=5) as s:
                    time.sleep(0.002)  # revd has accepted and waits for the first byte
                    s.sendall(msg)     # one write, no half-close: the classic client
                    r = Reply(s)
                    r.read(timeout=5)
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


if __name__ == "__main__":
    main(globals())
