#!/bin/sh
# smoke.sh - does every transport of shmbus-bench still move messages? Runs
# the latency and throughput sections briefly for every transport, on a
# small ring so that the rings wrap (PAD records included), and fails when
# the bench does (a failed row: a lost, repeated or torn message, a wrong
# length, a hang) or when a transport has no row. It never looks at a
# figure: what it checks holds however fast or slow the machine is.
# usage: bench/smoke.sh   (builds shmbus-bench with `make bench` if missing)
set -eu
cd "$(dirname "$0")/.."
PROG=build/plain/shmbus-bench
[ -x "$PROG" ] || make --no-print-directory bench >/dev/null
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
