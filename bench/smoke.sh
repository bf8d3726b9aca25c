#!/bin/sh
# smoke.sh - does every transport of shmbus-bench still move messages? Runs
# the latency and throughput sections briefly for every transport, on a
# small ring so that the rings wrap (PAD records included), and fails when
# the bench does (a failed row: a lost, repeated or torn message, a wrong
# length, a hang) or when a transport has no row; then bridge-bench --quick
# (through two shmbus-bridge and NATS), and reqrep-bench --quick (request
# and reply, shmbus and Unix sockets). It never looks at a figure: what it
# checks holds however fast or slow the machine is.
# usage: bench/smoke.sh   (builds them with `make bench` if missing)
set -eu
cd "$(dirname "$0")/.."
PROG=build/plain/shmbus-bench
BRIDGE_BENCH=build/plain/bridge-bench
REQREP_BENCH=build/plain/reqrep-bench
[ -x "$PROG" ] && [ -x "$BRIDGE_BENCH" ] && [ -x "$REQREP_BENCH" ] ||
	make --no-print-directory bench >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 64 KiB ring: 2,100 messages of 64 B (80-byte records) go round it more
# than twice, and 16 KiB is the largest message it takes (a quarter).
# The same run draws the latency plot, checked below: gnuplot is one of
# the packages scripts/install-deps.sh installs for `make test`.
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "smoke.sh: gnuplot is not installed; sh scripts/install-deps.sh" \
		"installs it (package gnuplot-nox)" >&2
	exit 1
fi
status=0
"$PROG" --section latency,throughput --reps 5 --count 2000 \
	--duration-ms 200 --sizes 64,1000,16K --ring-bytes 64K \
	--csv "$TMP/out.csv" --plot "$TMP/lat.png" \
	>"$TMP/out.txt" 2>"$TMP/err.txt" || status=$?
if [ "$status" -ne 0 ]; then
	cat "$TMP/out.txt" "$TMP/err.txt" >&2
	echo "smoke.sh: shmbus-bench exited with $status" >&2
	exit 1
fi
# Every transport listed by --help has rows with figures in the CSV.
names=$("$PROG" --help | sed -n '/^transports:/,$p' | awk 'NR > 1 { print $1 }')
for t in $names; do
	if ! grep -q "^[a-z]*,$t,[0-9]*,[a-z]" "$TMP/out.csv"; then
		echo "smoke.sh: no figures for transport $t" >&2
		exit 1
	fi
done
echo "smoke.sh: every transport moved its messages:" $names

# The plot is a PNG (its 8-byte signature) whose first chunk, IHDR, gives
# a width and a height that are not zero. Bytes as hex, read with od
# since `file` may not be installed.
png=$(od -An -tx1 -N24 "$TMP/lat.png" 2>/dev/null | tr -d ' \n')
signature=$(printf %s "$png" | cut -c1-16)
chunk=$(printf %s "$png" | cut -c25-32)
width=$(printf %s "$png" | cut -c33-40)
height=$(printf %s "$png" | cut -c41-48)
if [ "$signature" != 89504e470d0a1a0a ] || [ "$chunk" != 49484452 ] ||
	[ "$width" = 00000000 ] || [ "$height" = 00000000 ] ||
	[ ${#png} -ne 48 ]; then
	echo "smoke.sh: --plot wrote no valid PNG: header bytes '$png'" >&2
	exit 1
fi
echo "smoke.sh: --plot drew a PNG of $((0x$width)) x $((0x$height)) pixels"

# --plot without gnuplot: refused before measuring, with the package named,
# and nothing installed (apt-get and sudo here only leave a trace).
mkdir "$TMP/bin"
for tool in apt-get sudo; do
	printf '#!/bin/sh\n: >"%s/ran-%s"\n' "$TMP" "$tool" >"$TMP/bin/$tool"
	chmod +x "$TMP/bin/$tool"
done
status=0
PATH="$TMP/bin" "$PWD/$PROG" --plot "$TMP/p.png" --section latency \
	>"$TMP/out.txt" 2>"$TMP/err.txt" || status=$?
if [ "$status" -ne 2 ] || ! grep -q gnuplot-nox "$TMP/err.txt" ||
	[ -e "$TMP/ran-apt-get" ] || [ -e "$TMP/ran-sudo" ] ||
	[ -s "$TMP/out.txt" ]; then
	cat "$TMP/err.txt" >&2
	echo "smoke.sh: --plot without gnuplot: exit $status (want 2, the" \
		"package named, nothing run, nothing measured)" >&2
	exit 1
fi
echo "smoke.sh: --plot without gnuplot is refused and installs nothing"

# bridge-bench --quick: a nats-server, two shmbusd and two shmbus-bridge of
# its own; 2,000 messages of 64 B and of 4 KiB each way through both paths
# (the bridge's and plain NATS), every byte checked, none lost (else it
# exits 1). Its table must have, for each size and path, a rate, a lost
# count of 0 and two latencies, and the ratio row.
status=0
"$BRIDGE_BENCH" --quick >"$TMP/bridge.txt" 2>"$TMP/bridge.err" || status=$?
if [ "$status" -ne 0 ]; then
	cat "$TMP/bridge.txt" "$TMP/bridge.err" >&2
	echo "smoke.sh: bridge-bench --quick exited with $status" >&2
	exit 1
fi
rows=$(awk -F'|' '
	function trim(s) { gsub(/^ +| +$/, "", s); return s }
	$3 ~ /^ (bridge|nats): / && trim($4) ~ /^[0-9][0-9,]*$/ &&
	    trim($6) == "0" && trim($7) ~ /^[0-9.]+$/ &&
	    trim($8) ~ /^[0-9.]+$/ { print trim($2) "/" substr(trim($3), 1, 4) }
	trim($3) == "bridge / nats" && trim($4) ~ /^[0-9.]+x$/ {
	    print trim($2) "/ratio" }' "$TMP/bridge.txt" | LC_ALL=C sort | tr '\n' ' ')
want="4096 B/brid 4096 B/nats 4096 B/ratio 64 B/brid 64 B/nats 64 B/ratio "
if [ "$rows" != "$want" ]; then
	cat "$TMP/bridge.txt" >&2
	echo "smoke.sh: bridge-bench --quick: rows '$rows', want '$want'" >&2
	exit 1
fi
echo "smoke.sh: bridge-bench moved every message intact through the" \
	"bridges and through NATS"

# reqrep-bench --quick: a shmbusd of its own; 500 checked round trips per
# client through shmbus_call and through a Unix socket, 1 client x 1
# server and 4 x 4 (it exits 1 when any reply is not its request). Each
# shape and transport must have a rate and all its round trips intact.
status=0
"$REQREP_BENCH" --quick >"$TMP/reqrep.txt" 2>"$TMP/reqrep.err" || status=$?
if [ "$status" -ne 0 ]; then
	cat "$TMP/reqrep.txt" "$TMP/reqrep.err" >&2
	echo "smoke.sh: reqrep-bench --quick exited with $status" >&2
	exit 1
fi
rows=$(awk -F'|' '
	function trim(s) { gsub(/^ +| +$/, "", s); return s }
	(trim($3) == "shmbus" || trim($3) == "unix") &&
	    trim($4) ~ /^[0-9]+$/ && trim($4) > 0 {
		split(trim($2), cs, " x ")
		if (trim($7) == cs[1] * 500) print trim($2) "/" trim($3)
	}' "$TMP/reqrep.txt" | LC_ALL=C sort | tr '\n' ' ')
want="1 x 1/shmbus 1 x 1/unix 4 x 4/shmbus 4 x 4/unix "
if [ "$rows" != "$want" ]; then
	cat "$TMP/reqrep.txt" >&2
	echo "smoke.sh: reqrep-bench --quick: rows '$rows', want '$want'" >&2
	exit 1
fi
echo "smoke.sh: reqrep-bench: every round trip came back intact, shmbus" \
	"and Unix socket, 1 x 1 and 4 x 4"
