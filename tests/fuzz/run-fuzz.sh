#!/bin/sh
# Runs one libFuzzer target for SECONDS over a copy of its seed corpus.
# libFuzzer writes what it finds into its first corpus directory, so that
# is a copy in WORK_DIR (kept between runs: each run starts where the last
# one stopped), never the seed directory in the source tree.  A crashing
# input is saved in WORK_DIR/artifacts/; rerun it with: FUZZER FILE
#
# usage: run-fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS
set -eu
if [ $# -ne 4 ]; then
  echo "usage: $0 FUZZER SEED_DIR WORK_DIR SECONDS" >&2
  exit 2
fi
fuzzer=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"
# -timeout: an input that takes this long counts as a hang (a failure).
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"
