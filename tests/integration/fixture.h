/* fixture.h — a server on its own loop, for in-process library tests. */
#ifndef REVD_TEST_FIXTURE_H
#define REVD_TEST_FIXTURE_H

#include "revd.h"

struct fixture {
  uv_loop_t loop;
  revd_server_t *srv;
  struct sockaddr_storage addr; /* where srv listens */
  int closed;                   /* close callbacks seen (fixture_closed_cb) */
  int replies_ok, replies_failed;
};

/* A revd_server_close() callback counting into ((struct fixture *)arg)->closed. */
void fixture_closed_cb(revd_server_t *srv, void *arg);

/* Starts a server with opts (NULL: defaults) on 127.0.0.1, port 0. */
void fixture_start(struct fixture *f, const revd_options_t *opts);

/* Closes the fixture's server (and any others already closing), runs the
 * loop dry, and checks that `servers` close callbacks fired and
 * uv_loop_close() returns 0. */
void fixture_close_all(struct fixture *f, int servers);
void fixture_close(struct fixture *f); /* the same, for one server */

/* The TCP port the server listens on. */
int fixture_port(const struct fixture *f);

/* Runs the loop until pred(stats) holds or limit_ms pass.  Returns the
 * milliseconds it took, or -1 when pred never held. */
double fixture_run_until_stats(struct fixture *f, int (*pred)(const revd_stats_t *),
                               double limit_ms);

/* Runs the loop for ms milliseconds. */
void fixture_run_for(struct fixture *f, double ms);

#endif
