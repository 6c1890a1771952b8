/* ip_limit.c — max_conns_per_ip: how many connections each client address
 * holds, so one runaway client cannot take every slot (nginx's
 * limit_conn).  A table of counts keyed by address; each connection keeps
 * a pointer to its address's count (in a trailer after its handle, there
 * only when the limit is on), so releasing it needs no getpeername (which
 * fails once the peer has reset). */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h"

#define FIRST_BUCKETS 64

struct ip_count {
  struct ip_count *next; /* in its bucket */
  uint32_t conns;
  uint8_t len;           /* 4 or 16 */
  uint8_t addr[16];
};

/* The address bytes of a peer: 4 (IPv4, also when mapped into IPv6) or 16. */
static size_t peer_bytes(const struct sockaddr_storage *ss, uint8_t out[16]) {
  if (ss->ss_family == AF_INET) {
    memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    return 4;
  }
  const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(a)) {
    memcpy(out, a->s6_addr + 12, 4);
    return 4;
  }
  memcpy(out, a->s6_addr, 16);
  return 16;
}

static size_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211u;
  return (size_t)h;
}

/* Doubles the buckets when the table is full, so lookups stay short. */
static int table_grow(struct revd__ip_table *t) {
  size_t n = t->nbuckets ? t->nbuckets * 2 : FIRST_BUCKETS;
  struct ip_count **b = calloc(n, sizeof *b);
  if (!b)
    return UV_ENOMEM;
  for (size_t i = 0; i < t->nbuckets; i++) {
    while (t->buckets[i]) {
      struct ip_count *e = t->buckets[i];
      t->buckets[i] = e->next;
      size_t j = hash_bytes(e->addr, e->len) & (n - 1);
      e->next = b[j];
      b[j] = e;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
  return 0;
}

static struct ip_count *table_get(struct revd__ip_table *t, const uint8_t *addr, size_t len) {
  if (t->count >= t->nbuckets && table_grow(t) != 0 && !t->nbuckets)
    return NULL;
  struct ip_count **head = &t->buckets[hash_bytes(addr, len) & (t->nbuckets - 1)];
  for (struct ip_count *e = *head; e; e = e->next)
    if (e->len == len && memcmp(e->addr, addr, len) == 0)
      return e;
  struct ip_count *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->len = (uint8_t)len;
  memcpy(e->addr, addr, len);
  e->next = *head;
  *head = e;
  t->count++;
  return e;
}

int revd__ip_acquire(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uint8_t addr[16];
  int r = uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len);
  if (r != 0)
    return r;
  struct ip_count *e = table_get(&srv->ips, addr, peer_bytes(&ss, addr));
  if (!e)
    return UV_ENOMEM;
  if (e->conns >= srv->opts.max_conns_per_ip)
    return UV_EBUSY;
  e->conns++;
  *revd__conn_ip_slot(c) = e;
  return 0;
}

void revd__ip_release(struct conn *c) {
  revd_server_t *srv = conn_server(c);
  struct ip_count **slot = revd__conn_ip_slot(c);
  struct ip_count *e = *slot;
  if (!e)
    return;
  *slot = NULL;
  if (--e->conns > 0)
    return;
  struct ip_count **p = &srv->ips.buckets[hash_bytes(e->addr, e->len) & (srv->ips.nbuckets - 1)];
  while (*p != e)
    p = &(*p)->next;
  *p = e->next;
  free(e);
  srv->ips.count--;
}

void revd__ip_table_free(revd_server_t *srv) {
  for (size_t i = 0; i < srv->ips.nbuckets; i++) {
    while (srv->ips.buckets[i]) {
      struct ip_count *e = srv->ips.buckets[i];
      srv->ips.buckets[i] = e->next;
      free(e);
    }
  }
  free(srv->ips.buckets);
  memset(&srv->ips, 0, sizeof srv->ips);
}
