#!/bin/sh
# Runs a p2p swarm peer in the current folder: sh peer.sh IP PORT MIN_ALIVE
# It shares ./Shared with the tracker at IP:PORT, fetches every other file into ./Shared,
# and leaves once the swarm is complete and MIN_ALIVE seconds have passed. sh peer.sh --help
# says so too.
# The binary is found next to this script and built with `make` first if it is missing.
dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
bin="$dir/target/release/p2p"
if [ ! -x "$bin" ]; then
    make -C "$dir" >&2 || { echo "peer.sh: building p2p failed" >&2; exit 1; }
fi
exec "$bin" peer "$@"
