/* util.c — names, addresses and error text shared by the library and its programs. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "revd.h"

void revd_stats_add(revd_stats_t *total, const revd_stats_t *part) {
#define ADD(field, kind, name, help) total->field += part->field;
  REVD_STATS_MAP(ADD)
#undef ADD
  for (int i = 0; i < REVD_DURATION_BUCKETS; i++)
    total->duration_buckets[i] += part->duration_buckets[i];
  total->duration_sum_ms += part->duration_sum_ms;
}

const char *revd_version(void) { return REVD_VERSION_STRING; }

const char *revd_strerror(int err) {
  if (err == 0)
    return "success";
  return uv_strerror(err);
}

static const char *const mode_names[] = {"chunk", "eof", "line"};
static const char *const reverse_names[] = {"bytes", "codepoints", "graphemes"};

static int parse_name(const char *name, const char *const *names, int count) {
  for (int i = 0; name && i < count; i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  return UV_EINVAL;
}

int revd_mode_parse(const char *name) { return parse_name(name, mode_names, 3); }
int revd_reverse_parse(const char *name) { return parse_name(name, reverse_names, 3); }

const char *revd_mode_name(int mode) {
  return mode >= 0 && mode < 3 ? mode_names[mode] : "?";
}

const char *revd_reverse_name(int reverse) {
  return reverse >= 0 && reverse < 3 ? reverse_names[reverse] : "?";
}

int revd_format_addr(const struct sockaddr *addr, char *buf, size_t size) {
  char host[INET6_ADDRSTRLEN];
  int port, n;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
    uv_ip4_name(in, host, sizeof host);
    port = ntohs(in->sin_port);
    n = snprintf(buf, size, "%s:%d", host, port);
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
    uv_ip6_name(in6, host, sizeof host);
    port = ntohs(in6->sin6_port);
    n = snprintf(buf, size, "[%s]:%d", host, port);
  } else {
    return UV_EINVAL;
  }
  return n < 0 || (size_t)n >= size ? UV_ENOSPC : 0;
}

int revd_parse_addr(const char *host, int port, struct sockaddr_storage *out) {
  if (port < 0 || port > 65535 || host == NULL)
    return UV_EINVAL;
  memset(out, 0, sizeof *out);
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
    return 0;
  /* Accept "[::1]" as well as "::1". */
  char bare[INET6_ADDRSTRLEN];
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof bare) {
    memcpy(bare, host + 1, n - 2);
    bare[n - 2] = '\0';
    host = bare;
  }
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
    return 0;
  return UV_EINVAL;
}
