/* workers.h — revd --threads N: N-1 more event loops, one thread each, each
 * with its own server on the same address (SO_REUSEPORT): the kernel
 * spreads connections among them, and no loop shares anything. */
#ifndef REVD_WORKERS_H
#define REVD_WORKERS_H

#include "revd.h"

struct workers;

/* Starts `count` threads, each with a server built from *opts listening on
 * addr (already bound by the main server with reuse_port set) or, when fd
 * is not -1, on a dup() of the listening socket fd (one inherited from
 * systemd; the threads then take turns accepting on it).  Returns 0 with
 * *out set, or a negative UV_E* code after cleaning up what started. */
int workers_start(unsigned count, const revd_options_t *opts, const struct sockaddr *addr, int fd,
                  struct workers **out);

/* Asks every worker to close its server (each finishes its exchanges in
 * flight).  Returns at once; safe to call from the main loop's callbacks. */
void workers_request_stop(struct workers *w);

/* Adds the workers' counters, as each published them within the last
 * second, into *total.  Any thread; NULL is fine. */
void workers_collect(struct workers *w, revd_stats_t *total);

/* Waits for every worker thread, adds the counters each had when it was
 * stopped (its server closed) into *total (may be NULL), and frees everything.  NULL is fine. */
void workers_join(struct workers *w, revd_stats_t *total);

#endif
