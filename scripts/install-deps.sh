#!/bin/sh
# Installs the Debian packages shmbus needs to build, run and test, but only
# when they are missing: a machine that has them is left alone. Among them is
# systemd, for systemd-analyze and systemd-sysusers (checks of the installed
# unit), installed only when systemd-analyze is missing. Called first
# by `make test` and `make run` so a fresh Debian machine needs no manual step.
# With the argument `fuzz` (`make fuzz`, `make test`) it also makes sure clang
# can build libFuzzer targets: clang, plus the compiler-rt package that holds
# libFuzzer and the sanitizer runtimes. With `format` (`make format-check`,
# `make test`) it makes sure clang-format is there: the version Debian
# ships (14 on Debian 12) is the one the code is formatted with.
set -eu

# gnuplot-nox: bench/smoke.sh (in make test) draws shmbus-bench --plot.
# libnats-dev builds shmbus-bridge; its tests run a real nats-server and
# make TLS certificates with openssl.
# python3-pytest runs the Python binding's tests (python/tests), and
# python3-numpy its zero-copy ones, under Debian's /usr/bin/python3.
PACKAGES="build-essential pkg-config libuv1-dev libcjson-dev check gnuplot-nox systemd libnats-dev nats-server openssl python3-pytest python3-numpy"
WHAT="libuv, libcjson, check, gnuplot, systemd-analyze, libnats, nats-server, openssl, or pytest or numpy for /usr/bin/python3"

# systemd-analyze (package systemd) checks the installed unit
# (tests/install_test.sh); it is only needed, never run as PID 1.
have_base() {
	command -v cc >/dev/null 2>&1 &&
		command -v make >/dev/null 2>&1 &&
		command -v pkg-config >/dev/null 2>&1 &&
		command -v systemd-analyze >/dev/null 2>&1 &&
		command -v gnuplot >/dev/null 2>&1 &&
		command -v nats-server >/dev/null 2>&1 &&
		command -v openssl >/dev/null 2>&1 &&
		/usr/bin/python3 -c 'import pytest, numpy' >/dev/null 2>&1 &&
		pkg-config --exists libuv libcjson check libnats
}

# The real test: link an empty fuzz target. Having clang is not enough,
# since Debian ships libFuzzer apart from it.
have_fuzz() {
	tmp=$(mktemp -d) || return 1
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
		'{ (void)d; (void)n; return 0; }' >"$tmp/t.c"
	ok=1
	if command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 &&
		"${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined \
			-o "$tmp/t" "$tmp/t.c" >/dev/null 2>&1; then
		ok=0
	fi
	rm -rf "$tmp"
	return $ok
}

case "${1:-}" in
"") have_all() { have_base; } ;;
fuzz)
	PACKAGES="$PACKAGES clang libclang-rt-14-dev"
	WHAT="$WHAT, or clang cannot link -fsanitize=fuzzer"
	have_all() { have_base && have_fuzz; }
	;;
format)
	PACKAGES="clang-format"
	WHAT="clang-format"
	have_all() { command -v clang-format >/dev/null 2>&1; }
	;;
*)
	echo "install-deps: unknown argument '$1' (expected nothing, 'fuzz' or 'format')" >&2
	exit 2
	;;
esac

if have_all; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: missing packages ($PACKAGES) and neither root nor sudo" >&2
	exit 1
fi

echo "install-deps: installing $PACKAGES" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $PACKAGES

if ! have_all; then
	echo "install-deps: packages installed but still missing: $WHAT" >&2
	exit 1
fi
