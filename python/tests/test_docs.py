"""The examples of README.md and python/README.md run as they are, against
a broker of the test's own (they create and delete "sensors/imu")."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import BOUND, ROOT, python_env

pytest.importorskip("numpy")


def first_python_block(text: str, after: str) -> str:
    rest = text[text.index(after):]
    m = re.search(r"```python\n(.*?)```", rest, re.S)
    assert m, f"no python example after {after!r}"
    return m.group(1)


@pytest.mark.parametrize("doc,after", [("README.md", "## Python"), ("python/README.md", "# shmbus for Python")])
def test_the_example_runs(start_broker, doc, after):
    code = first_python_block((ROOT / doc).read_text(), after)
    b = start_broker()
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=python_env(SHMBUS_SOCKET=b.socket),
        capture_output=True,
        text=True,
        timeout=BOUND * 3,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "0.5"  # the mean of linspace(0, 1, 16), read in place
    assert lines[1].split()[0] == "0"  # nothing lost
    assert lines[-1] == "b'b'"
    assert "b'world'" in lines and "b'a'" in lines


def test_the_request_reply_example_runs(start_broker):
    code = first_python_block((ROOT / "python/README.md").read_text(), "### `Server` and `Requester`")
    b = start_broker()
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=python_env(SHMBUS_SOCKET=b.socket),
        capture_output=True,
        text=True,
        timeout=BOUND * 3,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["b'HELLO'", "b'LATER'", "True"]
