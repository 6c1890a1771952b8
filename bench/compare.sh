#!/bin/sh
# compare.sh — revbench against a hand-written epoll load generator doing the
# same exchange with the same close order, side by side in the same run: one
# server pinned to one core, each load generator in turn pinned to the other,
# alternating A B A B ... so drift hits both alike.
#
# usage: bench/compare.sh [BUILD_DIR] [ROUNDS] [SECONDS] [CONNS] [BYTES] [SERVER] [PATTERN]
#   BUILD_DIR  meson build directory (default: build)
#   SERVER     epoll (default: bench/peers/epoll-server) or revd
#   PATTERN    classic (default): send, read to EOF, close; the server closes
#              first.  peers/classic-client against revbench's chunk mode.
#              halfclose: send, shutdown(SHUT_WR), read to EOF, close; the
#              client closes first.  peers/epoll-client against revbench
#              --half-close.
# Cores: SERVER_CPU (default 0) and LOAD_CPU (default 1).
set -eu
build=${1:-build}
rounds=${2:-5}
secs=${3:-5}
conns=${4:-32}
bytes=${5:-64}
server=${6:-epoll}
pattern=${7:-classic}
scpu=${SERVER_CPU:-0}
lcpu=${LOAD_CPU:-1}

revbench=$build/bench/revbench
case $pattern in
  classic) client=$build/bench/peers/classic-client; rbflags="" ;;
  halfclose) client=$build/bench/peers/epoll-client; rbflags="--half-close" ;;
  *) echo "compare.sh: unknown pattern '$pattern': expected classic or halfclose" >&2; exit 2 ;;
esac
for f in "$revbench" "$client"; do
  [ -x "$f" ] || { echo "compare.sh: finding $f: not built (ninja -C $build)" >&2; exit 1; }
done

log=$(mktemp)
trap 'kill "$spid" 2>/dev/null; rm -f "$log"' EXIT INT TERM
case $server in
  epoll) taskset -c "$scpu" "$build/bench/peers/epoll-server" 0 2>"$log" & ;;
  revd) taskset -c "$scpu" "$build/src/app/revd" --port 0 2>"$log" & ;;
  *) echo "compare.sh: unknown server '$server': expected epoll or revd" >&2; exit 2 ;;
esac
spid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] && break
  sleep 0.2
done
[ -n "$port" ] || { echo "compare.sh: starting $server: no port in its output" >&2; exit 1; }

echo "server: $server on cpu $scpu, port $port; load on cpu $lcpu; $conns conns, $bytes bytes, ${secs}s per run; $pattern exchange"
# Rate: ok exchanges per second.  CPU: the load generator's own user+system
# CPU microseconds per exchange (how close it is to being the bottleneck).
printf '%-6s %13s %13s %7s %11s %11s %7s\n' round "${client##*/}/s" revbench/s ratio \
  peer-us/x revb-us/x ratio
rows=""
for i in $(seq "$rounds"); do
  eo=$(taskset -c "$lcpu" "$client" "$port" "$conns" "$secs" "$bytes")
  # shellcheck disable=SC2086 # rbflags is empty or one flag
  ro=$(taskset -c "$lcpu" "$revbench" --port "$port" -t 1 -c "$conns" -d "$secs" -s "$bytes" \
        $rbflags --json --no-progress)
  case "$eo $ro" in
    *mismatches=0*'"mismatches":0,'*) ;;
    *) echo "compare.sh: a reply was wrong: $eo $ro" >&2; exit 1 ;;
  esac
  e=$(echo "$eo" | sed -n 's/.* rate=\([0-9.]*\).*/\1/p')
  en=$(echo "$eo" | sed -n 's/.*exchanges=\([0-9]*\).*/\1/p')
  ec=$(echo "$eo" | sed -n 's/.* cpu=\([0-9.]*\).*/\1/p')
  r=$(echo "$ro" | sed -n 's/.*"rate":\([0-9.]*\).*/\1/p')
  rn=$(echo "$ro" | sed -n 's/.*"ok":\([0-9]*\).*/\1/p')
  ru=$(echo "$ro" | sed -n 's/.*"cpu_user_s":\([0-9.]*\).*/\1/p')
  rs=$(echo "$ro" | sed -n 's/.*"cpu_sys_s":\([0-9.]*\).*/\1/p')
  row="$e $r $(echo "$ec $en" | awk '{ print 1e6 * $1 / $2 }') $(echo "$ru $rs $rn" | awk '{ print 1e6 * ($1 + $2) / $3 }')"
  echo "$i $row" | awk '{ printf "%-6s %13.0f %13.0f %7.3f %11.2f %11.2f %7.3f\n", $1, $2, $3, $3 / $2, $4, $5, $5 / $4 }'
  rows="$rows$row
"
done
printf '%s' "$rows" | awk '{ e += $1; r += $2; ec += $3; rc += $4; n++ }
  END { printf "%-6s %13.0f %13.0f %7.3f %11.2f %11.2f %7.3f\n", "mean", e / n, r / n, r / e, ec / n, rc / n, rc / ec }'
# The medians of the per-round ratios: a round that another job on the
# machine disturbed moves the mean, hardly the median.
med() { sort -n | awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rm=$(printf '%s' "$rows" | awk '{ print $2 / $1 }' | med)
cm=$(printf '%s' "$rows" | awk '{ print $4 / $3 }' | med)
printf '%-6s %13s %13s %7.3f %11s %11s %7.3f\n' median "" "" "$rm" "" "" "$cm"
