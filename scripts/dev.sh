#!/usr/bin/env bash
# One entry point for a fresh Debian machine (as root, or with sudo):
#   bash scripts/dev.sh run    install what is missing, build, run revd on 127.0.0.1:7342
#   bash scripts/dev.sh test   install what is missing, build, run every test suite
#   bash scripts/dev.sh deps   only install what is missing
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and the tests need.
PACKAGES=(gcc g++ clang meson ninja-build pkg-config libuv1-dev libcmocka-dev
          libutf8proc-dev libhttp-parser-dev libclang-rt-14-dev python3
          gnuplot-nox unicode-data groff-base gcovr valgrind
          libsystemd-dev systemd prometheus iproute2)
# gcovr, valgrind: .ci/run's coverage and memcheck runs; libsystemd-dev:
# revd's socket activation and sd_notify (meson -Dsystemd=auto builds without
# it); systemd: systemd-socket-activate and systemd-analyze for the ops tests;
# iproute2: ss and ip netns for the backlog and runnable-docs tests;
# prometheus: promtool for the metrics format check (about 20 MB; the check is
# skipped, saying so, without it).

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "dev.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir" >/dev/null
}

case "${1:-}" in
  deps) install_missing ;;
  run)
    install_missing
    build build
    shift
    exec ./build/src/app/revd "$@"
    ;;
  test)
    install_missing
    build build
    meson test -C build --print-errorlogs
    ;;
  *)
    echo "usage: bash scripts/dev.sh run [REVD OPTION]... | test | deps" >&2
    exit 2
    ;;
esac
