#!/bin/sh
# Runs the p2p tracker in the current folder: sh tracker.sh
# It writes its port to ./port.txt and prints the swarm's CONNECT / ACQUIRED / DISCONNECT lines.
# sh tracker.sh --help describes it (and the pair trackers' arguments).
# The binary is found next to this script and built with `make` first if it is missing.
dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
bin="$dir/target/release/p2p"
if [ ! -x "$bin" ]; then
    make -C "$dir" >&2 || { echo "tracker.sh: building p2p failed" >&2; exit 1; }
fi
exec "$bin" tracker "$@"
