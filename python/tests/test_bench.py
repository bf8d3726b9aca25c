"""bench/python_bench.py runs every transport and finds every message as
sent (a short run; no figure is looked at, they depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import BINDIR, BOUND, ROOT, python_env


def test_the_benchmark_moves_every_message_intact():
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "python_bench.py"),
            "--count", "3000",
            "--latency-count", "300",
            "--reps", "1",
            "--bindir", str(BINDIR),
            "--json",
        ],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=BOUND * 6,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["wrong_messages"] == 0
    rows = {row["transport"]: row for row in result["rows"]}
    assert len(rows) == 6
    for name, row in rows.items():
        assert ("msgs_per_sec" in row) or ("p50_us" in row), name
        for key in ("msgs_per_sec", "p50_us", "p99_us"):
            if key in row:
                assert row[key] > 0, (name, key)
    assert any(n.startswith("shmbus zero-copy") for n in rows)
    assert "multiprocessing.Queue" in rows
