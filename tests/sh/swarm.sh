#!/bin/sh
# Runs a local swarm the way a grader does, and checks it.
#
#   sh tests/sh/swarm.sh [-n PEERS] [-s SIZE|mixed] [-a MIN_ALIVE] [-v] [-k]
#
# Lays out one folder per peer (peer.sh, tracker.sh and the release binary, as a copy of the
# project would have them) in a temporary folder, gives peer i one file of SIZE bytes (or, with
# "mixed", sizes from 0 bytes to 3 MiB), starts `sh tracker.sh` and then every `sh peer.sh
# 127.0.0.1 PORT MIN_ALIVE`, waits for all peers to exit, and checks that every peer exited 0
# and holds a byte-identical copy of every file and nothing else. -v shows the tracker's and
# the peers' output; -k keeps the folder. Also fails if the tracker dropped a peer (every
# peer here lives until it leaves). Exit status 0 when every check passed.
set -u
peers=4 size=mixed alive=1 verbose=0 keep=0
while getopts n:s:a:vk opt; do
    case $opt in
        n) peers=$OPTARG ;;
        s) size=$OPTARG ;;
        a) alive=$OPTARG ;;
        v) verbose=1 ;;
        k) keep=1 ;;
        *) echo "usage: swarm.sh [-n PEERS] [-s SIZE|mixed] [-a MIN_ALIVE] [-v] [-k]" >&2; exit 2 ;;
    esac
done
root=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd) || exit 1
bin="$root/target/release/p2p"
[ -x "$bin" ] || { echo "swarm.sh: $bin is missing: run make first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/p2p-swarm.XXXXXX") || exit 1
tracker_pid=
cleanup() {
    [ -n "$tracker_pid" ] && kill "$tracker_pid" 2>/dev/null
    if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One copy of the project per role, as a grader makes them.
copy() {
    mkdir -p "$1/Shared" "$1/target/release"
    cp "$root/peer.sh" "$root/tracker.sh" "$1/"
    cp "$bin" "$1/target/release/p2p"
}

mixed_size() {
    case $(($1 % 8)) in
        0) echo 3145735 ;; 1) echo 0 ;; 2) echo 513 ;; 3) echo 100000 ;;
        4) echo 1 ;; 5) echo 511 ;; 6) echo 512 ;; *) echo 1048577 ;;
    esac
}

mkdir -p "$work/originals"
copy "$work/tracker"
i=0
while [ "$i" -lt "$peers" ]; do
    copy "$work/peer$i"
    if [ "$size" = mixed ]; then bytes=$(mixed_size "$i"); else bytes=$size; fi
    head -c "$bytes" /dev/urandom > "$work/originals/file$i.bin"
    cp "$work/originals/file$i.bin" "$work/peer$i/Shared/"
    i=$((i + 1))
done

cd "$work/tracker" || exit 1
sh tracker.sh > tracker.out 2> tracker.err &
tracker_pid=$!
tries=0
until [ -s port.txt ]; do
    tries=$((tries + 1))
    [ "$tries" -gt 200 ] && { echo "swarm.sh: tracker wrote no port.txt" >&2; exit 1; }
    sleep 0.05
done
port=$(cat port.txt)

start=$(date +%s.%N)
pids=
i=0
while [ "$i" -lt "$peers" ]; do
    (cd "$work/peer$i" && sh peer.sh 127.0.0.1 "$port" "$alive" > out 2> err; echo $? > rc) &
    pids="$pids $!"
    i=$((i + 1))
done
# shellcheck disable=SC2086
wait $pids
end=$(date +%s.%N)
kill "$tracker_pid" 2>/dev/null
wait "$tracker_pid" 2>/dev/null
tracker_pid=

if [ "$verbose" = 1 ]; then
    echo "=== tracker (sh tracker.sh), ACQUIRED lines summarised"
    grep -v ' ACQUIRED: ' tracker.out
    echo "($(grep -c ' ACQUIRED: ' tracker.out) ACQUIRED lines)"
    # Each peer under its own heading, in the tracker's order: folder peerI is whichever
    # PEER N the tracker made of it (its SHUTDOWN line says), not PEER I.
    i=0
    while [ "$i" -lt "$peers" ]; do
        n=$(sed -n 's/^PEER \([0-9]*\) SHUTDOWN:.*/\1/p' "$work/peer$i/out" | head -n 1)
        echo "${n:-999999} $i"
        i=$((i + 1))
    done | sort -n | while read -r n i; do
        [ "$n" = 999999 ] && n="?"
        echo "=== PEER $n (folder peer$i: sh peer.sh 127.0.0.1 $port $alive)"
        cat "$work/peer$i/out"
    done
fi

failed=0
i=0
while [ "$i" -lt "$peers" ]; do
    rc=$(cat "$work/peer$i/rc")
    [ "$rc" = 0 ] || { echo "peer$i exited $rc: $(head -n 3 "$work/peer$i/err")"; failed=1; }
    have=$(ls -A "$work/peer$i/Shared" | wc -l)
    [ "$have" -eq "$peers" ] || { echo "peer$i has $have entries in Shared/, expected $peers"; failed=1; }
    j=0
    while [ "$j" -lt "$peers" ]; do
        cmp -s "$work/originals/file$j.bin" "$work/peer$i/Shared/file$j.bin" ||
            { echo "peer$i: file$j.bin differs or is missing"; failed=1; }
        j=$((j + 1))
    done
    i=$((i + 1))
done
# Every peer here lives until it leaves: none may ever be dropped as dead.
if grep -q 'dropped' "$work/tracker/tracker.err"; then
    echo "the tracker dropped a live peer: $(grep -m 1 'dropped' "$work/tracker/tracker.err")"
    failed=1
fi
secs=$(echo "$start $end" | awk '{ printf "%.3f", $2 - $1 }')
if [ "$failed" = 0 ]; then
    echo "swarm ok: $peers peers, size $size, MIN_ALIVE $alive: every copy identical, $secs s"
else
    echo "swarm FAILED: $peers peers, size $size, MIN_ALIVE $alive"
    exit 1
fi
