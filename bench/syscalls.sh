#!/bin/sh
# syscalls.sh - "no system call on the data path": runs build/plain/spin-pair
# (through the public API, on a topic a shmbusd of its own made with the
# default settings: a publisher and a spinning subscriber moving N messages
# of 64 bytes) under `strace -f -c` for two message counts, for each way of
# publishing and receiving (copy: publish/receive; zerocopy: claim/commit
# and peek/release; batch: publish_batch), and prints system calls per
# message from the difference, so set-up calls cancel out. Expected: 0.
# usage: bench/syscalls.sh [N1 N2]   (default 100000 1000000)
set -eu
cd "$(dirname "$0")/.."
N1=${1:-100000}
N2=${2:-1000000}
PROG=build/plain/spin-pair
command -v strace >/dev/null 2>&1 || {
	echo "syscalls.sh: strace is needed (apt-get install strace)" >&2
	exit 1
}
[ -x "$PROG" ] || make --no-print-directory bench >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# n mode -> total system calls. The broker's are counted too (strace -f
# follows it), but it does nothing per message: they cancel out.
count() {
	strace -f -c -o "$TMP/st.$1.$2" "$PROG" "$1" "$2" ||
		{ echo "syscalls.sh: spin-pair $1 $2 failed" >&2; exit 1; }
	awk '$NF == "total" { print $(NF - 2); exit }' "$TMP/st.$1.$2"
}

printf '%-10s %12s %12s %24s\n' mode "calls@$N1" "calls@$N2" \
	"system calls per message"
for mode in copy zerocopy batch; do
	a=$(count "$N1" "$mode")
	b=$(count "$N2" "$mode")
	awk -v m="$mode" -v a="$a" -v b="$b" -v n="$((N2 - N1))" 'BEGIN {
		printf "%-10s %12d %12d %24.6f\n", m, a, b, (b - a) / n }'
done
