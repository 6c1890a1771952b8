#!/bin/sh
# plot-sweep.sh CSV SVG — draws a revbench --sweep CSV: throughput (left axis)
# and p99 latency (right axis, log scale) against concurrency.
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
set -eu
if [ $# -ne 2 ]; then
  echo "usage: plot-sweep.sh SWEEP.csv OUT.svg" >&2
  exit 2
fi
csv=$1 svg=$2
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plot-sweep.sh: plotting: gnuplot not found (apt-get install gnuplot-nox)" >&2
  exit 1
fi
gnuplot <<GP
set terminal svg size 900,520 dynamic enhanced font "sans,12" background "white"
set output "$svg"
set datafile separator ","
set key top left
set title "revbench sweep: throughput and p99 latency against concurrency"
set xlabel "concurrent connections (-c)"
set logscale x 2
set ylabel "exchanges per second (ok)"
set y2label "p99 latency (us)"
set logscale y2 10
set ytics nomirror
set y2tics
set yrange [0:*]
set grid xtics ytics
plot "$csv" using 1:7 skip 1 with linespoints lw 2 pt 7 title "throughput (/s)" axes x1y1, \
     "$csv" using 1:10 skip 1 with linespoints lw 2 pt 5 dt 2 title "p99 latency (us)" axes x1y2
GP
echo "plot-sweep.sh: wrote $svg" >&2
