#!/bin/sh
# instructions.sh - "a reader costs the same alone or one of eight", counted
# in instructions rather than wall time (which two cores cannot show): runs
# build/plain/fanout-cost (the public API on a broker-made topic) under
# callgrind for K = 1, 2, 4, 8 subscribers at two message counts, and
# prints instructions per message for the publisher (writer_publish) and
# per message per subscriber (reader_receive). Taking the difference
# between the two counts cancels set-up costs. With CHECKSUM=1 the topics
# are checksummed, as a persistent topic is by default: the difference to
# a plain run is what the CRC-32C costs. With ZEROCOPY=1 the messages go
# through shmbus_claim/commit and shmbus_peek/release (still copied in and
# out, so that the counts compare).
# usage: [CHECKSUM=1|ZEROCOPY=1] bench/instructions.sh [N1 N2]
#   (default 20000 60000)
set -eu
cd "$(dirname "$0")/.."
N1=${1:-20000}
N2=${2:-60000}
PROG=build/plain/fanout-cost
MODE=
[ "${CHECKSUM:-0}" = 1 ] && MODE=checksum
[ "${ZEROCOPY:-0}" = 1 ] && MODE=zerocopy
command -v valgrind >/dev/null 2>&1 || {
	echo "instructions.sh: valgrind is needed (apt-get install valgrind)" >&2
	exit 1
}
[ -x "$PROG" ] || make --no-print-directory bench >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Inclusive instructions of function $2 in callgrind output $1.
inclusive() {
	callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
		awk -v fn="$2" '$0 ~ ":" fn " " || $0 ~ ":" fn "$" {
			gsub(",", "", $1); print $1; exit }'
}

run() { # n k -> file
	valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$1.$2" \
		"$PROG" "$1" "$2" 64 $MODE >/dev/null 2>&1
	echo "$TMP/cg.$1.$2"
}

printf '%-8s %22s %30s\n' readers "writer instr/message" "reader instr/message/reader"
for k in 1 2 4 8; do
	a=$(run "$N1" "$k")
	b=$(run "$N2" "$k")
	wa=$(inclusive "$a" writer_publish)
	wb=$(inclusive "$b" writer_publish)
	ra=$(inclusive "$a" reader_receive)
	rb=$(inclusive "$b" reader_receive)
	awk -v k="$k" -v n="$((N2 - N1))" -v wa="$wa" -v wb="$wb" \
		-v ra="$ra" -v rb="$rb" 'BEGIN {
		printf "%-8d %22.1f %30.1f\n", k, (wb - wa) / n,
			(rb - ra) / n / k }'
done
