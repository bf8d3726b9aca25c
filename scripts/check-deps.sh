#!/bin/sh
# check-deps.sh - the arrows between the folders (docs/architecture.md,
# "Dependencies"), checked: every `#include "FOLDER/..."` in a folder must
# name itself or a folder it may use, and the ring's layout and private
# headers are included only where shared memory is looked into directly.
# `make test` runs it; it fails, naming the file and the include, when an
# arrow is added that the table below does not allow, and when the table
# in docs/architecture.md (between the deps markers) is not the one printed
# by `check-deps.sh --doc`.
# usage: scripts/check-deps.sh [--doc]
set -eu
cd "$(dirname "$0")/.."

# folder: the folders it may include from ("shmbus" is include/shmbus/,
# the public headers). tests/ and fuzz/ may include anything.
RULES='sys:
ring: sys
wire: sys
client: sys ring wire shmbus
config: ring wire
daemon: sys ring wire config
tools: wire shmbus
bridge: wire shmbus
bench: sys ring shmbus
examples: shmbus'

# Headers of ring/ that name the layout's fields, and who may include them.
PRIVATE='ring/ring_layout.h ring/ring_private.h'
PRIVATE_USERS='ring tests fuzz bench'

# Single headers a folder may include from a folder it may not otherwise
# use: folder:header.
EXCEPTIONS='tools:client/request.h'

print_doc() {
	echo '| folder | may include |'
	echo '|---|---|'
	echo "$RULES" | while IFS=: read -r dir uses; do
		uses=$(echo "$uses" | sed 's/^ *//')
		echo "| \`$dir/\` | ${uses:-nothing of ours} |"
	done
	echo "| \`tests/\`, \`fuzz/\` | anything |"
	echo
	echo "\`$(echo "$PRIVATE" | sed 's/ /` and `/')\` (the fields of the"
	echo "shared memory) only in: $PRIVATE_USERS. One header across the"
	echo "table: $(echo "$EXCEPTIONS" | sed 's/:/\/ may include /')."
}

if [ "${1:-}" = --doc ]; then
	print_doc
	exit 0
fi

fail=0
complain() {
	echo "check-deps: $*" >&2
	fail=1
}

# The quoted includes of the files in folder $1, as "file:included".
includes() {
	for f in "$1"/*.c "$1"/*.h; do
		[ -f "$f" ] || continue
		sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" |
			while read -r inc; do echo "$f:$inc"; done
	done
}

echo "$RULES" | {
	while IFS=: read -r dir uses; do
		for pair in $(includes "$dir"); do
			file=${pair%%:*}
			inc=${pair#*:}
			top=${inc%%/*}
			[ "$top" = include ] && top=shmbus
			case " $dir $uses " in
			*" $top "*) ;;
			*)
				case " $EXCEPTIONS " in
				*" $dir:$inc "*) ;;
				*) complain "$file includes $inc:" \
					"$dir/ may not use $top/" ;;
				esac
				;;
			esac
			case " $PRIVATE " in
			*" $inc "*)
				case " $PRIVATE_USERS " in
				*" $dir "*) ;;
				*) complain "$file includes $inc: only" \
					"$PRIVATE_USERS may" ;;
				esac
				;;
			esac
		done
	done
	exit $fail
} || fail=1

doc=docs/architecture.md
want=$(mktemp)
trap 'rm -f "$want"' EXIT
print_doc >"$want"
if ! sed -n '/<!-- deps:begin -->/,/<!-- deps:end -->/p' "$doc" |
	sed '1d;$d' | diff -u "$want" - >&2; then
	complain "$doc: the table between the deps markers is not the one" \
		"above (- this script, + the doc); paste check-deps.sh --doc"
fi
exit $fail
