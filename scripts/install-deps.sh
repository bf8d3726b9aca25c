#!/bin/sh
# Installs the Debian packages shmbus needs to build, run and test, but only
# when they are missing: a machine that has them is left alone. Called first
# by `make test` and `make run` so a fresh Debian machine needs no manual step.
set -eu

PACKAGES="build-essential pkg-config libuv1-dev libcjson-dev check"

have_all() {
	command -v cc >/dev/null 2>&1 &&
		command -v make >/dev/null 2>&1 &&
		command -v pkg-config >/dev/null 2>&1 &&
		pkg-config --exists libuv libcjson check
}

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
	echo "install-deps: packages installed but pkg-config still cannot find libuv, libcjson or check" >&2
	exit 1
fi
