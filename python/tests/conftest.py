"""Fixtures of the Python binding's tests: brokers (shmbusd from the plain
build, each in a temporary directory, stopped with SIGTERM at the end), a
connection, unique topic names, the command line.

The tests run from the source tree: ``make python-test``, or
``/usr/bin/python3 -m pytest -q python/tests`` after ``make VARIANT=plain
all``. SHMBUS_TEST_BINDIR names another build directory.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYDIR = ROOT / "python"
BINDIR = Path(os.environ.get("SHMBUS_TEST_BINDIR", ROOT / "build" / "plain"))
SHMBUSD = BINDIR / "shmbusd"
SHMBUS = BINDIR / "shmbus"

if str(PYDIR) not in sys.path:
    sys.path.insert(0, str(PYDIR))

import shmbus  # noqa: E402

# Every wait in these tests is bounded by this, so that a hang fails.
BOUND = 10.0


def wait_until(pred: Any, what: str, bound: float = BOUND, step: float = 0.01) -> Any:
    """Polls ``pred`` until it returns something true, at most ``bound``
    seconds; fails the test with ``what`` otherwise."""
    deadline = time.monotonic() + bound
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {bound} s waiting for {what}")
        time.sleep(step)


class Broker:
    """One shmbusd in a directory of its own."""

    def __init__(
        self,
        directory: Path,
        config: Optional[Dict[str, Any]] = None,
        args: Optional[List[str]] = None,
        prefix: Optional[List[str]] = None,
    ) -> None:
        self.dir = directory
        self.socket = str(directory / "s.sock")
        self.log_path = directory / "broker.log"
        cmd = list(prefix or []) + [str(SHMBUSD), "--socket", self.socket]
        if config is not None:
            cfg = directory / "config.json"
            cfg.write_text(json.dumps(config))
            cmd += ["--config", str(cfg)]
        cmd += args or []
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(self._ready, f"shmbusd ready on {self.socket}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"shmbusd exited with {self.proc.returncode}:\n{self.log()}")
        return b"ready" in self.log_path.read_bytes()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connect(self, name: str = "pytest") -> "shmbus.Bus":
        return shmbus.connect(self.socket, name)

    def cli(self, *args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
        """Runs the command line against this broker."""
        kw.setdefault("timeout", BOUND * 3)
        kw.setdefault("capture_output", True)
        r = subprocess.run([str(SHMBUS), "--socket", self.socket, *args], **kw)
        if check and r.returncode != 0:
            pytest.fail(f"shmbus {' '.join(args)}: status {r.returncode}: {r.stderr!r}")
        return r

    def stat(self, topic: str) -> Dict[str, Any]:
        return json.loads(self.cli("stat", "--json", topic).stdout)

    def kill(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(BOUND)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(BOUND)
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def built() -> None:
    """The plain build must be there: the tests do not build it."""
    for f in (SHMBUSD, SHMBUS, BINDIR / "libshmbus.so"):
        if not f.exists():
            pytest.exit(f"{f} is missing: run `make VARIANT=plain all` first", 2)


@pytest.fixture(scope="session")
def broker(built: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The broker most tests share (built-in defaults); each test uses
    topic names of its own."""
    b = Broker(tmp_path_factory.mktemp("broker"))
    yield b
    assert b.kill() == 0, b.log()


@pytest.fixture
def start_broker(built: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Starts brokers of the test's own (a config, extra flags); each is
    stopped at the end."""
    started: List[Broker] = []

    def start(
        config: Optional[Dict[str, Any]] = None,
        directory: Optional[Path] = None,
        **kw: Any,
    ) -> Broker:
        b = Broker(directory or tmp_path_factory.mktemp("own"), config, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.kill()


@pytest.fixture
def bus(broker: Broker) -> Iterator["shmbus.Bus"]:
    with broker.connect() as b:
        yield b


_serial = itertools.count()


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:120].strip("-.")
    return f"py/{base}-{next(_serial)}"


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A directory other users may enter (pytest's are 0700), for tests
    that run a process as another user."""
    d = Path(tempfile.mkdtemp(prefix="py-shmbus-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def python_env(**extra: str) -> Dict[str, str]:
    """The environment of a Python child that imports the checkout's
    package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYDIR) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env
