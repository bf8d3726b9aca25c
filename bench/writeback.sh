#!/bin/sh
# writeback.sh - what writing a persistent topic back to its file costs the
# broker (docs/operations.md, Persistence): for each capacity, starts
# build/plain/shmbusd with a data_dir (default: a directory under /var/tmp,
# i.e. on disk; pass another as $1 to measure e.g. a tmpfs) and
# persist_sync true and false, creates a persistent overwrite topic, fills
# it past a full lap with 1000-byte messages, and prints the write-back the
# broker logged at the publisher's close: the whole ring, copied and
# written, with the fdatasync calls when persist_sync is on.
# usage: bench/writeback.sh [DATA_PARENT_DIR] [CAPACITY...]
#        (default /var/tmp, 1MiB 64MiB)
set -eu
cd "$(dirname "$0")/.."
PARENT=${1:-/var/tmp}
[ $# -gt 0 ] && shift
CAPS=${*:-1MiB 64MiB}
D=build/plain
[ -x $D/shmbusd ] && [ -x $D/shmbus ] ||
	make --no-print-directory VARIANT=plain $D/shmbusd $D/shmbus >/dev/null
TMP=$(mktemp -d "$PARENT/shmbus-writeback.XXXXXX")
trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PID=
MSG=$(head -c 1000 /dev/zero | tr '\0' x)

for sync in true false; do
	for cap in $CAPS; do
		rm -rf "$TMP"/*
		printf '{"data_dir": "%s", "persist_interval_ms": 3600000,\n' \
			"$TMP" >"$TMP/cfg.json"
		printf ' "persist_sync": %s, "log_level": "debug"}\n' \
			"$sync" >>"$TMP/cfg.json"
		$D/shmbusd --foreground --socket "$TMP/s" \
			--config "$TMP/cfg.json" 2>"$TMP/log" &
		PID=$!
		for _ in $(seq 100); do [ -S "$TMP/s" ] && break; sleep 0.05; done
		$D/shmbus --socket "$TMP/s" create --persistent --capacity "$cap" \
			--max-message 1KiB --overflow overwrite wb
		# One lap and a bit: the close writes back the whole ring.
		n=$(( $(numfmt --from=iec-i "${cap%B}") / 1000 + 100 ))
		$D/shmbus --socket "$TMP/s" pub --repeat "$n" wb "$MSG"
		sleep 0.2
		kill $PID
		wait $PID 2>/dev/null || true
		PID=
		line=$(grep 'wrote back' "$TMP/log" | tail -1)
		echo "capacity $cap, persist_sync $sync: ${line#*DEBUG: }"
	done
done
