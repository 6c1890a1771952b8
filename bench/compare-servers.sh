#!/bin/sh
# compare-servers.sh — revd against the hand-written single-threaded epoll
# server (bench/peers/epoll-server), side by side in the same run.  Both
# servers run pinned to one core; the load runs pinned to the other and
# loads each server in turn, A B A B ..., so drift hits both alike.
#
# Two client patterns:
#   halfclose  revbench -t 1 --half-close (chunk mode): send, shutdown(SHUT_WR), read to
#              EOF, verify, close.  Latency from revbench's JSON.
#   classic    bench/peers/classic-client: send, read to EOF, verify, close;
#              never half-closes.  revd then lingers (shuts down its write
#              side and waits for the client's EOF); the epoll peer closes.
#
# Per run: completed exchanges per second; the SERVER's CPU microseconds per
# completed exchange (utime+stime from /proc/PID/stat, before and after the
# run, divided by the exchanges); the server's and the load's CPU use in % of
# one core (a load near 100% means exch/s measures the load, not the
# server); exchange latency p50/p99 (connect to verified reply); and the
# sockets in TIME_WAIT when the run started (/proc/net/sockstat: once
# net.ipv4.tcp_max_tw_buckets is full, closes skip TIME_WAIT, and the
# half-close pattern escapes its ephemeral-port limit; see bench/README.md).
# Any mismatch, error or connect error fails the script.
#
# Summary: per pattern, each server's means, then revd/epoll as the mean and
# the median of the per-round ratios (each round's pair ran back to back;
# the median shrugs off a round where the machine changed mid-pair).
#
# usage: bench/compare-servers.sh [BUILD_DIR] [ROUNDS] [SECONDS] [CONNS] [BYTES] [PATTERNS]
#   BUILD_DIR  meson build directory (default: build)
#   ROUNDS     rounds per pattern (default 5); SECONDS per run (default 4)
#   CONNS      connections in flight (default 32); BYTES per message (default 64)
#   PATTERNS   comma-separated: halfclose,classic (default both)
# Cores: SERVER_CPU (default 0) and LOAD_CPU (default 1).  REVD: the revd
# binary to measure (default BUILD_DIR/src/app/revd), e.g. a patched build.
set -eu
build=${1:-build}
rounds=${2:-5}
secs=${3:-4}
conns=${4:-32}
bytes=${5:-64}
patterns=${6:-halfclose,classic}
scpu=${SERVER_CPU:-0}
lcpu=${LOAD_CPU:-1}
me=compare-servers.sh

revd=${REVD:-$build/src/app/revd}
epoll=$build/bench/peers/epoll-server
revbench=$build/bench/revbench
classic=$build/bench/peers/classic-client
for f in "$revd" "$epoll" "$revbench" "$classic"; do
  [ -x "$f" ] || { echo "$me: finding $f: not built (ninja -C $build)" >&2; exit 1; }
done
tck=$(getconf CLK_TCK)

tmp=$(mktemp -d)
revd_pid="" revd_port="" epoll_pid="" epoll_port="" pid="" port=""
cleanup() {
  for p in $revd_pid $epoll_pid; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "$me: $*" >&2; exit 1; }

# start_server NAME CMD...: starts it pinned, waits for its port.
start_server() {
  name=$1
  shift
  taskset -c "$scpu" "$@" 2>"$tmp/$name.log" &
  eval "${name}_pid=$!"
  port=""
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$tmp/$name.log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || die "starting $name: no port in its output: $(cat "$tmp/$name.log")"
  eval "${name}_port=$port"
}

# Server CPU so far, in clock ticks: utime + stime.  The command name in
# field 2 may hold spaces; everything after its ')' is fixed.
ticks() {
  [ -r "/proc/$1/stat" ] || die "server pid $1 is gone"
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# json_num FIELD: a top-level number from revbench's JSON in $tmp/out.
json_num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$tmp/out"; }
# lat_num P: a percentile of the exchange latency (the latency_us object).
lat_num() {
  sed -n 's/.*"latency_us":{\([^}]*\)}.*/\1/p' "$tmp/out" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"
}
# kv FIELD: a field of classic-client's key=value line in $tmp/out.
kv() { sed -n "s/.*\(^\| \)$1=\([0-9.]*\).*/\2/p" "$tmp/out"; }

# load PATTERN PORT: runs one load; sets ok rate p50 p99 lsec (the load's
# own CPU seconds), or dies.
load() {
  rc=0
  case $1 in
    halfclose)
      taskset -c "$lcpu" "$revbench" --port "$2" -t 1 --half-close -c "$conns" -d "$secs" -s "$bytes" \
        --json --no-progress >"$tmp/out" 2>"$tmp/err" || rc=$?
      ok=$(json_num ok)
      bad="mismatches=$(json_num mismatches) errors=$(json_num errors)"
      bad="$bad connect_errors=$(json_num connect_errors)"
      rate=$(json_num rate)
      p50=$(lat_num p50)
      p99=$(lat_num p99)
      lsec=$(echo "$(json_num cpu_user_s) $(json_num cpu_sys_s)" | awk '{ print $1 + $2 }')
      ;;
    classic)
      taskset -c "$lcpu" "$classic" "$2" "$conns" "$secs" "$bytes" >"$tmp/out" 2>"$tmp/err" || rc=$?
      ok=$(kv exchanges)
      bad="mismatches=$(kv mismatches) errors=$(kv errors)"
      rate=$(kv rate)
      p50=$(kv p50_us)
      p99=$(kv p99_us)
      lsec=$(kv cpu)
      ;;
  esac
  case "$rc $bad" in
    "0 mismatches=0 errors=0 connect_errors=0" | "0 mismatches=0 errors=0") ;;
    *) die "$1 load on port $2 failed: exit $rc, $bad: $(cat "$tmp/out" "$tmp/err")" ;;
  esac
  [ "${ok:-0}" -gt 0 ] || die "$1 load on port $2: no exchange completed: $(cat "$tmp/out")"
}

start_server revd "$revd" --port 0 --mode chunk
start_server epoll "$epoll" 0

echo "servers on cpu $scpu ($revd pid $revd_pid port $revd_port, epoll-server pid $epoll_pid" \
  "port $epoll_port); load on cpu $lcpu; $conns conns, $bytes bytes, ${secs}s per run," \
  "$rounds rounds; CLK_TCK $tck"
fmt='%-9s %5s %-6s %10.0f %9.2f %7.1f %7.1f %9.1f %9.1f %7d\n'
printf '%-9s %5s %-6s %10s %9s %7s %7s %9s %9s %7s\n' pattern round server exch/s srv-us/x \
  srv-cpu% ld-cpu% p50-us p99-us tw
: >"$tmp/rows"
for pat in $(echo "$patterns" | tr ',' ' '); do
  case $pat in
    halfclose | classic) ;;
    *) die "unknown pattern '$pat': expected halfclose or classic" ;;
  esac
  for i in $(seq "$rounds"); do
    for srv in revd epoll; do
      eval "pid=\$${srv}_pid port=\$${srv}_port"
      tw=$(sed -n 's/^TCP:.* tw \([0-9]*\).*/\1/p' /proc/net/sockstat)
      t0=$(ticks "$pid")
      load "$pat" "$port"
      sleep 0.3 # the server's last closes (and revd's lingering) belong to this run
      t1=$(ticks "$pid")
      echo "$pat $i $srv $rate $t0 $t1 $ok $lsec $p50 $p99 ${tw:-0}" |
        awk -v tck="$tck" -v secs="$secs" '{ cpu = ($6 - $5) / tck
          print $1, $2, $3, $4, 1e6 * cpu / $7, 100 * cpu / secs, 100 * $8 / secs, $9, $10, $11 }' |
        tee -a "$tmp/rows" | awk -v fmt="$fmt" '{ printf fmt, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
    done
  done
done

# Means per pattern and server; revd/epoll per round, then their mean and
# median.  Columns 4..9: exch/s srv-us/x srv-cpu% ld-cpu% p50 p99.
echo
printf '%-9s %-12s %10s %9s %7s %7s %9s %9s\n' pattern "" exch/s srv-us/x srv-cpu% ld-cpu% \
  p50-us p99-us
awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { for (f = 4; f <= 9; f++) { v[$1, $2, $3, f] = $f; s[$1, $3, f] += $f }
    n[$1, $3]++
    if (!($1 in seen)) { seen[$1] = 1; order[++np] = $1 }
    if ($2 + 0 > rounds[$1]) rounds[$1] = $2 + 0 }
  END {
    split("revd epoll", srv, " ")
    for (p = 1; p <= np; p++) {
      pat = order[p]
      for (j = 1; j <= 2; j++) {
        printf "%-9s %-12s", pat, "mean " srv[j]
        for (f = 4; f <= 9; f++)
          printf f == 4 ? " %10.0f" : f == 5 ? " %9.2f" : f <= 7 ? " %7.1f" : " %9.1f",
            s[pat, srv[j], f] / n[pat, srv[j]]
        printf "\n"
      }
      for (f = 4; f <= 9; f++) {
        sum = 0
        for (i = 1; i <= rounds[pat]; i++) {
          q[i] = v[pat, i, "epoll", f] > 0 ? v[pat, i, "revd", f] / v[pat, i, "epoll", f] : 0
          sum += q[i]
        }
        mean[f] = sum / rounds[pat]
        med[f] = median(q, rounds[pat])
      }
      printf "%-9s %-12s %10.3f %9.3f %7.2f %7.2f %9.2f %9.2f\n", pat, "revd/epoll", mean[4],
        mean[5], mean[6], mean[7], mean[8], mean[9]
      printf "%-9s %-12s %10.3f %9.3f %7.2f %7.2f %9.2f %9.2f\n", pat, "  median", med[4],
        med[5], med[6], med[7], med[8], med[9]
    }
  }' "$tmp/rows"
