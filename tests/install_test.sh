#!/bin/sh
# install_test.sh - checks what a user gets from `make install`: installs into
# a temporary DESTDIR as a packager would, checks the installed tree, then
# builds the examples against the installed files with pkg-config alone (no
# -I or -L into the source tree) and runs them against the installed broker.
# It also checks the systemd unit without starting it (systemd-analyze
# security must rate it under 3, systemd-analyze verify must be clean), the
# sysusers.d entry (systemd-sysusers --dry-run) and that what --help and the
# man pages name is installed. Run by `make test` (target check-install).
# Needs a C compiler, pkg-config, binutils, systemd-analyze and the build
# dependencies; not man, not root.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAKE=${MAKE:-make}
CC=${CC:-cc}
PREFIX=/opt/shmbus # not /usr/local: proves PREFIX reaches every file
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-install.XXXXXX") || exit 1
DEST=$WORK/dest
P=$DEST$PREFIX
SOCK=$WORK/run/shmbusd.sock
LOG=$WORK/log
BROKER=
passed=0
failed=0

cleanup() {
	if [ -n "$BROKER" ]; then
		kill "$BROKER" 2>/dev/null
		wait "$BROKER" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# check DESCRIPTION COMMAND...: runs COMMAND with its output in the log; on
# failure prints that output, so a failing run says why without a rerun.
check() {
	desc=$1
	shift
	: >"$WORK/last"
	if "$@" >"$WORK/last" 2>&1; then
		passed=$((passed + 1))
		echo "ok   $desc"
	else
		failed=$((failed + 1))
		echo "FAIL $desc"
		sed 's/^/     | /' "$WORK/last" | tail -n 20
	fi
	cat "$WORK/last" >>"$LOG"
}

# wait_for FILE TEXT: up to 10 s for FILE to contain TEXT.
wait_for() {
	i=0
	while [ $i -lt 100 ]; do
		if grep -qF -- "$2" "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "no \"$2\" in $1 after 10 s:"
	cat "$1"
	return 1
}

is_file() {
	[ -f "$1" ] || { echo "missing: $1"; return 1; }
}

is_exec() {
	if [ ! -f "$1" ] || [ ! -x "$1" ]; then
		echo "not executable: $1"
		return 1
	fi
}

has_line() {
	grep -qF -- "$2" "$1" && return 0
	echo "no \"$2\" in $1:"
	cat "$1"
	return 1
}

soname_is() {
	readelf -d "$1" | grep -F '(SONAME)' | tee "$WORK/soname"
	grep -qF "[$2]" "$WORK/soname"
}

needs() {
	readelf -d "$1" | grep -F '(NEEDED)' | tee "$WORK/needed"
	grep -qF "[$2]" "$WORK/needed"
}

needs_not() { ! needs "$1" "$2"; }

# Only the public API leaves the shared library.
exports_only_api() {
	nm -D --defined-only "$1" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^shmbus_/' \
	    | tee "$WORK/extra"
	[ ! -s "$WORK/extra" ]
}

# Nothing installed may remember the staging directory.
no_destdir_inside() {
	! grep -rlF -- "$DEST" "$DEST"
}

pc() {
	PKG_CONFIG_PATH=$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEST \
	    pkg-config "$@"
}

build() { # build OUTPUT SOURCE PKG-CONFIG-ARGS...
	out=$1
	src=$2
	shift 2
	flags=$(pc "$@") || return 1
	echo "$CC -std=c11 -Wall -Wextra -Werror -o $out $src $flags"
	# shellcheck disable=SC2086 # flags is a list of words
	$CC -std=c11 -Wall -Wextra -Werror -o "$out" "$src" $flags
}

# libuv comes from the system, not from the staging tree.
build_uv() {
	uv=$(pkg-config --cflags --libs libuv) || return 1
	flags=$(pc --cflags --libs shmbus) || return 1
	# shellcheck disable=SC2086
	$CC -std=c11 -Wall -Wextra -Werror -o "$WORK/uv_consumer" \
	    "$ROOT/examples/uv_consumer.c" $flags $uv
}

build_static() {
	cflags=$(pc --cflags shmbus) || return 1
	libs=$(pc --static --libs-only-l shmbus | sed 's/-lshmbus//') || return 1
	# shellcheck disable=SC2086
	$CC -std=c11 -Wall -Wextra -Werror $cflags \
	    -o "$WORK/producer-static" "$ROOT/examples/producer.c" \
	    "$P/lib/libshmbus.a" $libs
}

# run_lib PROGRAM ARGS...: runs an example on the installed library and
# broker, bounded so that a hang fails instead of stopping the suite.
run_lib() {
	LD_LIBRARY_PATH=$P/lib SHMBUS_SOCKET=$SOCK timeout 10 "$@"
}

uses_installed_lib() {
	LD_LIBRARY_PATH=$P/lib ldd "$1" | tee "$WORK/ldd"
	grep -qF "$P/lib/libshmbus.so.0" "$WORK/ldd"
}

start_broker() {
	mkdir -p "$WORK/run"
	"$P/sbin/shmbusd" --socket "$SOCK" 2>"$WORK/broker.log" &
	BROKER=$!
	wait_for "$WORK/broker.log" "ready"
}

stop_broker() {
	kill -TERM "$BROKER"
	wait "$BROKER"
	status=$?
	BROKER=
	echo "shmbusd exit status $status"
	[ "$status" -eq 0 ]
}

# Two subscribers wait, the producer publishes five messages, each
# subscriber must print all five and no loss.
pub_sub_roundtrip() {
	run_lib "$WORK/consumer" install/demo 5 >"$WORK/c.out" 2>&1 &
	c=$!
	run_lib "$WORK/uv_consumer" install/demo 5 >"$WORK/u.out" 2>&1 &
	u=$!
	wait_for "$WORK/c.out" "waiting on" || return 1
	wait_for "$WORK/u.out" "waiting on" || return 1
	run_lib "$WORK/producer" install/demo 5 || return 1
	wait "$c" || { echo "consumer failed"; cat "$WORK/c.out"; return 1; }
	wait "$u" || { echo "uv_consumer failed"; cat "$WORK/u.out"; return 1; }
	for f in "$WORK/c.out" "$WORK/u.out"; do
		for n in 1 2 3 4 5; do
			has_line "$f" "message $n" || return 1
		done
		has_line "$f" "received 5, lost 0" || return 1
	done
}

# The installed command line publishes to a consumer built from the
# installed library.
cli_roundtrip() {
	run_lib "$WORK/consumer" install/cli 2 >"$WORK/cli.out" 2>&1 &
	c=$!
	wait_for "$WORK/cli.out" "waiting on" || return 1
	SHMBUS_SOCKET=$SOCK timeout 10 "$P/bin/shmbus" pub install/cli one two \
	    || return 1
	wait "$c" || { echo "consumer failed"; cat "$WORK/cli.out"; return 1; }
	has_line "$WORK/cli.out" "one" && has_line "$WORK/cli.out" "two"
}

cli_ls() {
	SHMBUS_SOCKET=$SOCK timeout 10 "$P/bin/shmbus" create install/kept \
	    || return 1
	SHMBUS_SOCKET=$SOCK timeout 10 "$P/bin/shmbus" ls >"$WORK/ls.out" \
	    || { cat "$WORK/ls.out"; return 1; }
	has_line "$WORK/ls.out" "install/kept"
}

# ---- the systemd unit, its user, the documents --help names ---------------
UNIT=$P/lib/systemd/system/shmbusd.service
SYSUSERS=$P/lib/sysusers.d/shmbus.conf

have_analyze() {
	command -v systemd-analyze >/dev/null 2>&1 && return 0
	echo "no systemd-analyze (package systemd): run make deps"
	return 1
}

# systemd-analyze security rates the installed unit: under 3 ("OK" or
# better; the unit had 9.6, "UNSAFE", before it was hardened).
unit_exposure_under_3() {
	have_analyze || return 1
	systemd-analyze security --offline=true --no-pager "${1:-$UNIT}" \
	    >"$WORK/security" 2>&1
	grep -v '^✓' "$WORK/security"
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' \
	    "$WORK/security")
	echo "exposure: ${level:-none}"
	[ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l < 3) }'
}

# systemd-analyze verify of an installed unit (default shmbusd's), word for
# word, except that ExecStart points into the staging tree (verify wants the
# binary to exist). The man pages that Documentation= names must be found
# too, in the installed tree (when man is there to look).
unit_verifies() {
	unit=${1:-$UNIT}
	prog=${2:-sbin/shmbusd}
	name=${unit##*/}
	have_analyze || return 1
	mkdir -p "$WORK/verify"
	sed "s|^ExecStart=$PREFIX/|ExecStart=$P/|" "$unit" \
	    >"$WORK/verify/$name"
	grep -q "^ExecStart=$P/$prog " "$WORK/verify/$name" \
	    || { echo "no ExecStart=$PREFIX/$prog in $unit"; return 1; }
	man=--man=no
	if command -v man >/dev/null 2>&1; then
		man=--man=yes
	fi
	MANPATH=$P/share/man systemd-analyze verify "$man" \
	    "$WORK/verify/$name" >"$WORK/verify/out" 2>&1
	status=$?
	cat "$WORK/verify/out"
	[ "$status" -eq 0 ] && [ ! -s "$WORK/verify/out" ]
}

# The sysusers.d entry parses (systemd-sysusers --dry-run reads it, writes
# nothing) and creates the user and group the unit names.
sysusers_parses() {
	for want in "User=shmbus" "Group=shmbus"; do
		has_line "$UNIT" "$want" || return 1
	done
	if ! grep -Eq '^g[[:space:]]+shmbus[[:space:]]' "$SYSUSERS" ||
	    ! grep -Eq '^u[[:space:]]+shmbus[[:space:]]' "$SYSUSERS"; then
		echo "no g/u shmbus lines in $SYSUSERS"
		cat "$SYSUSERS"
		return 1
	fi
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers --dry-run "$SYSUSERS"
	else
		echo "no systemd-sysusers: format checked only"
		awk '!/^[[:space:]]*(#|$)/ && $1 !~ /^[ugmr]$/ { bad = 1; print }
		     END { exit bad }' "$SYSUSERS"
	fi
}

# The unit and the example config agree: the socket in RuntimeDirectory=,
# its directory mode, the socket's mode, data_dir in StateDirectory=.
unit_matches_example() {
	ex=$P/share/doc/shmbus/shmbusd.example.json
	has_line "$UNIT" "RuntimeDirectory=shmbus" &&
	    has_line "$UNIT" "RuntimeDirectoryMode=0750" &&
	    has_line "$UNIT" "--socket /run/shmbus/shmbusd.sock" &&
	    has_line "$UNIT" "--socket-mode 0660" &&
	    has_line "$UNIT" "StateDirectory=shmbus" &&
	    has_line "$ex" '"path": "/run/shmbus/shmbusd.sock"' &&
	    has_line "$ex" '"dir_mode": "0750"' &&
	    has_line "$ex" '"mode": "0660"' &&
	    has_line "$ex" '"data_dir": "/var/lib/shmbus"'
}

# What --help names is installed: its man pages NAME(N) (those of this
# project) and the documents it names by file name (NAME.md, looked for
# in the documentation directory, as the man pages say). With "must", it
# must name at least one.
help_names_installed() {
	prog=$1
	must=${2:-}
	"$prog" --help >"$WORK/help" 2>&1 || { cat "$WORK/help"; return 1; }
	n=0
	# shellcheck disable=SC2013 # names, one word each
	for page in $(grep -Eo '\bshmbus(d|-bridge)?\([0-9]\)' "$WORK/help" |
	    sort -u); do
		name=${page%(*}
		sect=$(echo "$page" | tr -dc 0-9)
		is_file "$P/share/man/man$sect/$name.$sect" || return 1
		echo "names $page: installed"
		n=$((n + 1))
	done
	# shellcheck disable=SC2013
	for doc in $(grep -Eo '[A-Za-z_/-]+\.md\b' "$WORK/help" | sort -u); do
		is_file "$P/share/doc/shmbus/${doc##*/}" || return 1
		echo "names $doc: installed"
		n=$((n + 1))
	done
	if [ "$n" -eq 0 ] && [ -n "$must" ]; then
		echo "$prog --help names no manual"
		return 1
	fi
}

# The documents the man pages name, by path in the documentation
# directory or as docs/NAME.md, are installed there.
man_docs_installed() {
	# shellcheck disable=SC2013
	for doc in $(grep -Eoh '(share/doc/shmbus/|docs/)[A-Za-z_.-]+[A-Za-z]' \
	    "$P"/share/man/man*/* | sed 's|.*/||' | sort -u); do
		is_file "$P/share/doc/shmbus/$doc" || return 1
		echo "$doc: installed"
	done
}

echo "install test: make install DESTDIR=$DEST PREFIX=$PREFIX"
# shellcheck disable=SC2086 # MAKE may carry words ("make -s")
check "make install" $MAKE -C "$ROOT" --no-print-directory VARIANT=plain \
    install DESTDIR="$DEST" PREFIX="$PREFIX"

check "header shmbus/shmbus.h" is_file "$P/include/shmbus/shmbus.h"
check "header shmbus/map.h" is_file "$P/include/shmbus/map.h"
check "static library" is_file "$P/lib/libshmbus.a"
check "shared library (dev link)" is_file "$P/lib/libshmbus.so"
check "shared library soname libshmbus.so.0" \
    soname_is "$P/lib/libshmbus.so" libshmbus.so.0
check "runtime link libshmbus.so.0" is_file "$P/lib/libshmbus.so.0"
check "shared library exports only shmbus_*" \
    exports_only_api "$P/lib/libshmbus.so"
check "pkg-config file" is_file "$P/lib/pkgconfig/shmbus.pc"
check "broker sbin/shmbusd" is_exec "$P/sbin/shmbusd"
if ls "$ROOT"/tools/*.c >/dev/null 2>&1; then
	check "command bin/shmbus" is_exec "$P/bin/shmbus"
else
	echo "skip command bin/shmbus (no tools/ in this tree yet)"
fi
check "man page shmbusd(8)" is_file "$P/share/man/man8/shmbusd.8"
check "man page shmbus(1)" is_file "$P/share/man/man1/shmbus.1"
check "man page shmbus(3)" is_file "$P/share/man/man3/shmbus.3"
check "systemd unit" is_file "$P/lib/systemd/system/shmbusd.service"
check "unit runs $PREFIX/sbin/shmbusd" has_line \
    "$P/lib/systemd/system/shmbusd.service" "ExecStart=$PREFIX/sbin/shmbusd"
check "example config" is_file "$P/share/doc/shmbus/shmbusd.example.json"
check "sysusers.d entry" is_file "$SYSUSERS"
check "sysusers.d entry parses, makes the unit's user" sysusers_parses
check "unit exposure (systemd-analyze security) under 3" unit_exposure_under_3
check "systemd-analyze verify of the unit is clean" unit_verifies
check "unit and example config agree" unit_matches_example
check "what shmbusd --help names is installed" \
    help_names_installed "$P/sbin/shmbusd" must
if [ -x "$P/bin/shmbus" ]; then
	check "what shmbus --help names is installed" \
	    help_names_installed "$P/bin/shmbus"
fi
BRIDGE_UNIT=$P/lib/systemd/system/shmbus-bridge.service
check "bridge bin/shmbus-bridge" is_exec "$P/bin/shmbus-bridge"
check "man page shmbus-bridge(1)" is_file "$P/share/man/man1/shmbus-bridge.1"
check "bridge systemd unit" is_file "$BRIDGE_UNIT"
check "bridge unit starts after shmbusd" has_line "$BRIDGE_UNIT" \
    "After=shmbusd.service"
check "bridge unit exposure (systemd-analyze security) under 3" \
    unit_exposure_under_3 "$BRIDGE_UNIT"
check "systemd-analyze verify of the bridge unit is clean" \
    unit_verifies "$BRIDGE_UNIT" bin/shmbus-bridge
check "the example bridge config is valid" "$P/bin/shmbus-bridge" \
    --config "$P/share/doc/shmbus/shmbus-bridge.example.json" --check-config
check "what shmbus-bridge --help names is installed" \
    help_names_installed "$P/bin/shmbus-bridge" must
check "documents the man pages name are installed" man_docs_installed
check "no installed file names the DESTDIR" no_destdir_inside

check "pkg-config --modversion" pc --modversion shmbus
check "pkg-config flags point into DESTDIR" sh -c \
    "PKG_CONFIG_PATH='$P/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='$DEST' \
     pkg-config --cflags --libs shmbus | grep -F -- '-I$P/include' \
     | grep -F -- '-L$P/lib'"
check "build producer with pkg-config" \
    build "$WORK/producer" "$ROOT/examples/producer.c" --cflags --libs shmbus
check "build consumer with pkg-config" \
    build "$WORK/consumer" "$ROOT/examples/consumer.c" --cflags --libs shmbus
check "build uv_consumer with pkg-config" build_uv
check "build producer statically (pkg-config --static)" build_static
check "producer needs libshmbus.so.0" needs "$WORK/producer" libshmbus.so.0
check "static producer needs no libshmbus.so" \
    needs_not "$WORK/producer-static" libshmbus.so.0
check "consumer loads the installed library" \
    uses_installed_lib "$WORK/consumer"

# The library asks for static TLS (the cached thread id, read at every
# publish), which dlopen must still be able to give it.
loads_with_dlopen() {
	cat >"$WORK/dlopen.c" <<-'EOF'
	#include <dlfcn.h>
	#include <stdio.h>
	int main(int argc, char **argv)
	{
		void *lib = dlopen(argv[argc - 1], RTLD_NOW | RTLD_LOCAL);
		const char *(*err)(int);

		if (lib == NULL) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 1;
		}
		*(void **)&err = dlsym(lib, "shmbus_strerror");
		if (err == NULL) {
			fprintf(stderr, "dlsym: %s\n", dlerror());
			return 1;
		}
		puts(err(-2));
		return dlclose(lib) != 0;
	}
	EOF
	$CC -std=c11 -Wall -Wextra -Werror -o "$WORK/dlopen" "$WORK/dlopen.c" \
	    -ldl || return 1
	"$WORK/dlopen" "$P/lib/libshmbus.so.0"
}

check "libshmbus.so.0 loads with dlopen" loads_with_dlopen

# The Python package, imported from the staged dist-packages alone (no
# checkout on the path, no SHMBUS_LIBRARY), finds the staged library next
# to it; with the broker up, it publishes and receives through it.
# PYTHONDIR as the Makefile chose it for this PREFIX.
make_var() {
	# shellcheck disable=SC2086 # MAKE may carry words ("make -s")
	$MAKE -C "$ROOT" --no-print-directory -s PREFIX="$2" \
	    --eval="print-var: ; @echo \$($1)" print-var
}
PYDIR=$DEST$(make_var PYTHONDIR "$PREFIX")

# With the default PREFIX a user imports the package with no PYTHONPATH:
# PYTHONDIR is on the sys.path of Debian's python3.
default_pythondir_on_path() {
	where=$(make_var PYTHONDIR /usr/local) || return 1
	echo "default PYTHONDIR: $where"
	/usr/bin/python3 -c 'import sys; assert sys.argv[1] in sys.path, sys.path' \
	    "$where"
}

python_package() {
	if [ ! -x /usr/bin/python3 ]; then
		echo "no /usr/bin/python3 (package python3): run make deps"
		return 1
	fi
	(cd / && env -u SHMBUS_LIBRARY PYTHONPATH="$PYDIR" \
	    PYTHONDONTWRITEBYTECODE=1 SHMBUS_SOCKET="$SOCK" timeout 10 \
	    /usr/bin/python3 -c "$1" "$PYDIR" "$P/lib/libshmbus.so.0")
}

python_finds_staged_library() {
	python_package '
import os, sys, shmbus
where, lib = sys.argv[1], sys.argv[2]
print(shmbus.__file__, shmbus.library_path())
assert shmbus.__file__.startswith(where + "/shmbus/"), shmbus.__file__
assert os.path.samefile(shmbus.library_path(), lib), shmbus.library_path()
'
}

python_roundtrip() {
	python_package '
import shmbus
with shmbus.connect(name="install-py") as bus:
    with bus.subscriber("install/py") as sub, bus.publisher("install/py") as pub:
        pub.publish(b"from python", timeout=1)
        got = sub.receive(timeout=5)
print(got)
assert got == b"from python"
'
}

check "python package imports from dist-packages, finds the staged library" \
    python_finds_staged_library
check "make install's default PYTHONDIR is on python3's path" \
    default_pythondir_on_path
check "installed shmbusd starts" start_broker
if [ -n "$BROKER" ]; then
	check "producer -> consumer and uv_consumer" pub_sub_roundtrip
	if [ -x "$P/bin/shmbus" ]; then
		check "shmbus pub -> consumer" cli_roundtrip
		check "shmbus ls lists the topic" cli_ls
	fi
	check "static producer publishes" \
	    run_lib "$WORK/producer-static" install/static 3
	check "python package publishes and receives" python_roundtrip
	check "shmbusd stops cleanly on SIGTERM" stop_broker
fi
check "producer without a broker fails" sh -c \
    "! SHMBUS_SOCKET='$WORK/none.sock' LD_LIBRARY_PATH='$P/lib' \
     '$WORK/producer' 2>&1"

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
