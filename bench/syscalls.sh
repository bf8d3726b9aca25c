#!/bin/sh
# syscalls.sh - "no system call on the fast path": runs build/plain/spin-pair
# (a writer and a spinning reader moving N messages of 64 bytes through a
# ring) under `strace -f -c` for two message counts and prints system calls
# per message from the difference, so set-up calls cancel out. Expected: 0.
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

count() { # n -> total system calls
	strace -f -c -o "$TMP/st.$1" "$PROG" "$1"
	awk '$NF == "total" { print $(NF - 2); exit }' "$TMP/st.$1"
}

a=$(count "$N1")
b=$(count "$N2")
printf '%-12s %10s\n' messages syscalls
printf '%-12s %10s\n' "$N1" "$a" "$N2" "$b"
awk -v a="$a" -v b="$b" -v n="$((N2 - N1))" 'BEGIN {
	printf "system calls per message on the fast path: %.6f\n",
		(b - a) / n }'
