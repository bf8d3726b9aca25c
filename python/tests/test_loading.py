"""Where the package finds libshmbus: $SHMBUS_LIBRARY, next to an installed
copy, the checkout's build/plain/, and the error that says how to get it.
Each case runs in a fresh interpreter, since a process loads it once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import BINDIR, BOUND, PYDIR, python_env

SHOW = "import shmbus; print(shmbus.library_path())"


def run(code: str, env: dict, cwd: str = "/") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=BOUND * 3
    )


def test_the_checkout_finds_build_plain():
    env = python_env()
    env.pop("SHMBUS_LIBRARY", None)
    r = run(SHOW, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(PYDIR.parent / "build" / "plain" / "libshmbus.so")


def test_shmbus_library_wins(tmp_path):
    copy = tmp_path / "libcopy.so"
    shutil.copy(BINDIR / "libshmbus.so", copy)
    r = run(SHOW, python_env(SHMBUS_LIBRARY=str(copy)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy)


def test_a_missing_library_says_how_to_get_it(tmp_path):
    code = (
        "import shmbus\n"  # importing needs no library
        "help_text = shmbus.__doc__\n"
        "try:\n"
        "    shmbus.connect()\n"
        "except shmbus.LibraryNotFoundError as e:\n"
        "    assert isinstance(e, FileNotFoundError)\n"
        "    print(e)\n"
    )
    r = run(code, python_env(SHMBUS_LIBRARY=str(tmp_path / "nowhere.so")))
    assert r.returncode == 0, r.stderr
    msg = r.stdout
    assert "nowhere.so (missing)" in msg
    assert "make" in msg and "make install" in msg and "SHMBUS_LIBRARY" in msg


def test_an_installed_copy_finds_the_library_it_was_installed_with(tmp_path):
    """The layout `make install` makes: PREFIX/lib/python3/dist-packages/
    shmbus/ with _installed.py, and the library in PREFIX/lib; found
    relative to the package, so also from a staged DESTDIR."""
    lib = tmp_path / "lib"
    pkg = lib / "python3" / "dist-packages" / "shmbus"
    shutil.copytree(PYDIR / "shmbus", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "_installed.py").write_text('LIBDIR = "/nonexistent/lib"\nLIBDIR_RELATIVE = "../../.."\n')
    shutil.copy(BINDIR / "libshmbus.so", lib / "libshmbus.so.0")
    env = dict(os.environ, PYTHONPATH=str(pkg.parent), PYTHONDONTWRITEBYTECODE="1")
    env.pop("SHMBUS_LIBRARY", None)
    r = run(SHOW, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(lib / "libshmbus.so.0")
