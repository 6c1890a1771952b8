#!/usr/bin/env python3
"""Soak and storms: revd under bounded, mixed load.

- soak-MODE: 6 clients exchange messages of mixed sizes for 8 s; every
  reply is verified; afterwards revd holds no more fds than when idle, its
  RSS is bounded, and its counters match what the clients saw.
- storm-MODE: connections reset (SO_LINGER 0) mid-message or right after
  connecting, among clients that must keep being served; revd frees them
  all and exits 0.
"""
import random
import time

from revdtest import (Revd, connect, in_threads, main, payload, random_exchange,
                      reset_close)

SECONDS = 8


def soak(mode):
    with Revd("--mode", mode) as d:
        def client(i):
            rng, replies, end = random.Random(i), 0, time.monotonic() + SECONDS
            while time.monotonic() < end:
                outcome, n = random_exchange(d.port, mode, rng)
                assert outcome == "complete", "%s exchange: %s" % (mode, outcome)
                replies += n
            return replies

        replies = sum(in_threads(client, 6))
        print("%s: %d replies verified" % (mode, replies))
        d.check_resources(32 * 1024)
        st = d.stop_ok()
        assert st["completed"] == replies, "revd counts %d replies, the clients got %d" % (
            st["completed"], replies)
        assert st["resets"] == st["timeouts"] == st["cut_short"] == 0, st


def storm(mode):
    with Revd("--mode", mode) as d:
        end = time.monotonic() + SECONDS * 3 // 4

        def resetter(i):
            rng, n = random.Random(i), 0
            while time.monotonic() < end:
                s = connect(d.port)
                if rng.random() < 0.7:  # mid-message (a line without its end, or eof before EOF)
                    s.sendall(payload(rng.randint(1, 64 * 1024), n).replace(b"\n", b"."))
                reset_close(s)
                n += 1
            return n

        def served(i):
            rng, n = random.Random(i), 0
            while time.monotonic() < end:
                outcome, _ = random_exchange(d.port, mode, rng)
                assert outcome == "complete", "a client among the resets got %s" % outcome
                n += 1
            return n

        counts = in_threads(lambda i: resetter(i) if i < 4 else served(i), 6)
        print("%s: %d resets, %d exchanges served among them" % (mode, sum(counts[:4]), sum(counts[4:])))
        d.check_resources(32 * 1024)
        st = d.stop_ok()
        assert st["active"] == 0, "connections left open after the storm: %s" % st


def case_soak_chunk():
    soak("chunk")


def case_soak_eof():
    soak("eof")


def case_soak_line():
    soak("line")


def case_storm_eof():
    storm("eof")


def case_storm_line():
    storm("line")


if __name__ == "__main__":
    main(globals())
