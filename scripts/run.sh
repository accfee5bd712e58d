#!/usr/bin/env bash
# Installs what is missing, builds a release build, and runs ringcached on
# the binary port 8889 and the text port 11211 in the foreground.
#   scripts/run.sh [ringcached options...]     e.g. scripts/run.sh -m 1024 -t 2
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_missing_packages
configure_build build-release --buildtype=release
ninja -C build-release >/dev/null
log "starting build-release/server/ringcached (Ctrl-C stops it)"
exec build-release/server/ringcached -p 8889 --text-port 11211 "$@"
