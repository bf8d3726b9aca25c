#!/usr/bin/python3
"""What small messages (64 bytes; --size) cost from Python: shmbus through its Python binding
(copy and zero-copy), next to Python's own multiprocessing.Queue and a
socket.socketpair(), in the same run, between two processes.

Throughput: a publisher process sends COUNT messages as fast as the
transport takes them, a subscriber process receives them all; messages per
second from the publisher's first send to the subscriber's last receive
(one clock: CLOCK_MONOTONIC, shared by the processes).

Latency: ping-pong between two processes, one message in flight; each
message carries its send time, and the receiver records now minus that:
the one-way latency, both directions pooled. p50 and p99.

Each figure is the median over --reps repetitions; within a repetition
the transports take turns, so that a noisy moment hurts them alike. Every
message carries its sequence number and is checked on arrival (lost, out
of order); a run with a wrong message fails (exit status 1).

The processes are pinned to CPUs 0 and 1 when there are two. A broker is
started for the run (build/plain/shmbusd, in a temporary directory) unless
--socket names one. Run from the source tree after `make`:

    /usr/bin/python3 bench/python_bench.py --reps 5

bench/README.md ("Measured figures") has the table of a run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

import shmbus  # noqa: E402

SIZE = 64
PAD = bytes(SIZE - 8)
WARMUP = 1000
BATCH = 64
now = time.monotonic_ns


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {cpu})


def seq_of(data: Any) -> int:
    return int.from_bytes(data[:8], "little")


# ---- the transports, each as: open both ends, send, receive ----------------
# A transport is a class with setup() in the parent (before the fork),
# sender(cpu) and receiver(cpu) in the children (open their end), and
# send(seq_or_stamp) / recv() -> int (the first 8 bytes) on those ends.


class ShmbusCopy:
    name = "shmbus copy (publish / receive)"

    def __init__(self, sock: str, topic: str, spin: bool = False) -> None:
        self.sock, self.topic, self.spin = sock, topic, spin

    def setup(self) -> None:
        pass

    def open_rx(self, topic: str) -> None:
        self.bus = shmbus.connect(self.sock, "bench-rx")
        try:
            self.bus.create(topic, capacity=max(1 << 20, 16 * SIZE), max_message=SIZE)
        except shmbus.FileExistsError:
            pass
        self.sub = self.bus.subscriber(topic)

    def open_tx(self, topic: str) -> None:
        if not hasattr(self, "bus"):
            self.bus = shmbus.connect(self.sock, "bench-tx")
        self.pub = self.bus.publisher(topic)

    def send(self, v: int) -> None:
        self.pub.publish(v.to_bytes(8, "little") + PAD)

    def send_many(self, first: int, n: int) -> None:
        publish = self.pub.publish
        for v in range(first, first + n):
            publish(v.to_bytes(8, "little") + PAD)

    def recv(self) -> int:
        if self.spin:
            receive = self.sub.receive
            while True:
                m = receive(0)
                if m is not None:
                    return seq_of(m)
        return seq_of(self.sub.receive())

    def recv_many(self, n: int, first: int) -> int:
        receive = self.sub.receive
        bad = 0
        for v in range(first, first + n):
            if seq_of(receive()) != v:
                bad += 1
        return bad


class ShmbusSpin(ShmbusCopy):
    name = "shmbus copy, receiving with timeout 0 (spinning)"

    def __init__(self, sock: str, topic: str) -> None:
        super().__init__(sock, topic, spin=True)


class ShmbusZeroCopy(ShmbusCopy):
    name = "shmbus zero-copy (claim / peek)"

    def send(self, v: int) -> None:
        with self.pub.claim(SIZE) as buf:
            buf[:8] = v.to_bytes(8, "little")

    def send_many(self, first: int, n: int) -> None:
        claim = self.pub.claim
        for v in range(first, first + n):
            with claim(SIZE) as buf:
                buf[:8] = v.to_bytes(8, "little")

    def recv(self) -> int:
        with self.sub.peek() as view:
            return seq_of(view)

    def recv_many(self, n: int, first: int) -> int:
        peek = self.sub.peek
        bad = 0
        for v in range(first, first + n):
            with peek() as view:
                if seq_of(view) != v:
                    bad += 1
        return bad


class ShmbusBatch(ShmbusCopy):
    name = f"shmbus batch (publish_batch of {BATCH} / receive)"

    def send_many(self, first: int, n: int) -> None:
        batch = self.pub.publish_batch
        end = first + n
        for base in range(first, end, BATCH):
            msgs = [v.to_bytes(8, "little") + PAD for v in range(base, min(base + BATCH, end))]
            done = batch(msgs)
            assert done == len(msgs)


class MpQueue:
    name = "multiprocessing.Queue"

    def __init__(self, sock: str, topic: str) -> None:
        pass

    def setup(self) -> None:
        ctx = mp.get_context("fork")
        self.q = {"a": ctx.Queue(), "b": ctx.Queue()}

    def open_rx(self, topic: str) -> None:
        self.rx = self.q[topic[-1]]

    def open_tx(self, topic: str) -> None:
        self.tx = self.q[topic[-1]]

    def send(self, v: int) -> None:
        self.tx.put(v.to_bytes(8, "little") + PAD)

    def send_many(self, first: int, n: int) -> None:
        put = self.tx.put
        for v in range(first, first + n):
            put(v.to_bytes(8, "little") + PAD)

    def recv(self) -> int:
        return seq_of(self.rx.get())

    def recv_many(self, n: int, first: int) -> int:
        get = self.rx.get
        return sum(1 for v in range(first, first + n) if seq_of(get()) != v)

    def close(self) -> None:
        self.tx.close()
        self.tx.join_thread()  # flush before the process exits


class SocketPair:
    name = "socket.socketpair() (AF_UNIX stream)"

    def __init__(self, sock: str, topic: str) -> None:
        pass

    def setup(self) -> None:
        self.ends = socket.socketpair()

    def open_rx(self, topic: str) -> None:
        self.s = self.ends[0 if topic.endswith("a") else 1]
        self.buf = bytearray(SIZE)

    def open_tx(self, topic: str) -> None:
        if not hasattr(self, "s"):
            self.s = self.ends[1 if topic.endswith("a") else 0]

    def send(self, v: int) -> None:
        self.s.sendall(v.to_bytes(8, "little") + PAD)

    def send_many(self, first: int, n: int) -> None:
        sendall = self.s.sendall
        for v in range(first, first + n):
            sendall(v.to_bytes(8, "little") + PAD)

    def recv(self) -> int:
        got = self.s.recv_into(self.buf, SIZE, socket.MSG_WAITALL)
        assert got == SIZE
        return seq_of(self.buf)

    def recv_many(self, n: int, first: int) -> int:
        recv_into, buf = self.s.recv_into, self.buf
        bad = 0
        for v in range(first, first + n):
            if recv_into(buf, SIZE, socket.MSG_WAITALL) != SIZE or seq_of(buf) != v:
                bad += 1
        return bad


THROUGHPUT = [ShmbusCopy, ShmbusZeroCopy, ShmbusBatch, MpQueue, SocketPair]
LATENCY = [ShmbusCopy, ShmbusZeroCopy, ShmbusSpin, MpQueue, SocketPair]


# ---- the two measurements -------------------------------------------------


def run_pair(target_a: Callable, target_b: Callable) -> Tuple[Any, Any]:
    """Runs target_b (which answers first: it opens its receiving end) and
    target_a in two forked processes; returns what each sent back."""
    ctx = mp.get_context("fork")
    ra, wa = ctx.Pipe(False)
    rb, wb = ctx.Pipe(False)
    ready_r, ready_w = ctx.Pipe(False)
    go = ctx.Event()
    pb = ctx.Process(target=target_b, args=(wb, ready_w, go))
    pa = ctx.Process(target=target_a, args=(wa, ready_w, go))
    pb.start()
    if not ready_r.poll(30):
        raise RuntimeError("the receiving process did not start")
    ready_r.recv()
    pa.start()
    if not ready_r.poll(30):
        raise RuntimeError("the sending process did not start")
    ready_r.recv()
    go.set()
    out_a = ra.recv() if ra.poll(300) else None
    out_b = rb.recv() if rb.poll(300) else None
    pa.join(30)
    pb.join(30)
    if out_a is None or out_b is None or pa.exitcode or pb.exitcode:
        raise RuntimeError(f"a process failed (exit {pa.exitcode}, {pb.exitcode})")
    return out_a, out_b


def throughput(cls: type, sock: str, topic: str, count: int) -> Tuple[float, int]:
    """Messages per second, and how many arrived wrong."""
    t = cls(sock, topic + "a")
    t.setup()

    def sender(out, ready, go) -> None:
        pin(0)
        t.open_tx(topic + "a")
        ready.send(True)
        go.wait()
        start = now()
        t.send_many(0, count)
        if hasattr(t, "close"):
            t.close()
        out.send(start)

    def receiver(out, ready, go) -> None:
        pin(1)
        t.open_rx(topic + "a")
        ready.send(True)
        go.wait()
        bad = t.recv_many(count, 0)
        out.send((now(), bad))

    start, (end, bad) = run_pair(sender, receiver)
    return count / ((end - start) / 1e9), bad


def latency(cls: type, sock: str, topic: str, count: int) -> Tuple[List[int], int]:
    """One-way latencies in ns of a ping-pong (both directions), and how
    many messages were not the one expected."""
    t = cls(sock, topic + "a")
    t.setup()
    total = WARMUP + count

    def pinger(out, ready, go) -> None:
        pin(0)
        t.open_rx(topic + "b")
        t.open_tx(topic + "a")
        ready.send(True)
        go.wait()
        samples = []
        for i in range(total):
            t.send(now())
            stamp = t.recv()
            if i >= WARMUP:
                samples.append(now() - stamp)
        if hasattr(t, "close"):
            t.close()
        out.send((samples, 0))

    def ponger(out, ready, go) -> None:
        pin(1)
        t.open_rx(topic + "a")
        ready.send(True)
        go.wait()
        t.open_tx(topic + "b")
        samples = []
        for i in range(total):
            stamp = t.recv()
            arrived = now()
            if i >= WARMUP:
                samples.append(arrived - stamp)
            t.send(now())
        if hasattr(t, "close"):
            t.close()
        out.send((samples, 0))

    (sa, ba), (sb, bb) = run_pair(pinger, ponger)
    # A stamp that is not a time of this run (a wrong message) would be
    # far off: count those as wrong.
    wrong = sum(1 for s in sa + sb if not 0 <= s < 10**10)
    return sa + sb, wrong + ba + bb


def pct(samples: List[int], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


# ---- the run ---------------------------------------------------------------


def start_broker(bindir: Path) -> Tuple[subprocess.Popen, str, str]:
    d = tempfile.mkdtemp(prefix="py-bench-")
    sock = os.path.join(d, "s.sock")
    log = open(os.path.join(d, "broker.log"), "wb")
    proc = subprocess.Popen([str(bindir / "shmbusd"), "--socket", sock], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while b"ready" not in Path(d, "broker.log").read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"shmbusd did not start: {Path(d, 'broker.log').read_text()}")
        time.sleep(0.01)
    return proc, sock, d


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100_000, help="messages per throughput run (100000)")
    ap.add_argument("--latency-count", type=int, default=20_000, help="round trips per latency run (20000)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions; figures are medians (5)")
    ap.add_argument("--socket", help="use the broker at this socket instead of starting one")
    ap.add_argument("--bindir", default=str(ROOT / "build" / "plain"), help="where shmbusd is")
    ap.add_argument("--size", type=int, default=64, help="message bytes, 8 or more (64)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    if args.size < 8:
        ap.error("--size must be 8 or more (the sequence number)")
    global SIZE, PAD
    SIZE, PAD = args.size, bytes(args.size - 8)

    throughput_rows = [c for c in THROUGHPUT if c is not ShmbusBatch or SIZE <= 4096]
    broker = None
    if args.socket:
        sock = args.socket
    else:
        broker, sock, tmp = start_broker(Path(args.bindir))
    # Batching is for small messages: for large ones the binding's join of
    # the batch into one buffer (and Python allocating the messages) is
    # what such a run would measure.
    tput: Dict[str, List[float]] = {c.name: [] for c in throughput_rows}
    lat: Dict[str, Dict[str, List[float]]] = {c.name: {"p50": [], "p99": []} for c in LATENCY}
    wrong = 0
    try:
        for rep in range(args.reps):
            for i, cls in enumerate(throughput_rows):
                rate, bad = throughput(cls, sock, f"pybench/t{rep}-{i}-", args.count)
                tput[cls.name].append(rate)
                wrong += bad
            for i, cls in enumerate(LATENCY):
                samples, bad = latency(cls, sock, f"pybench/l{rep}-{i}-", args.latency_count)
                lat[cls.name]["p50"].append(pct(samples, 50))
                lat[cls.name]["p99"].append(pct(samples, 99))
                wrong += bad
            print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)

    names = [c.name for c in throughput_rows] + [c.name for c in LATENCY if c.name not in tput]
    result = {
        "size": SIZE,
        "reps": args.reps,
        "count": args.count,
        "latency_count": args.latency_count,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "wrong_messages": wrong,
        "rows": [],
    }
    for name in names:
        row: Dict[str, Any] = {"transport": name}
        if name in tput:
            row["msgs_per_sec"] = statistics.median(tput[name])
        if name in lat:
            row["p50_us"] = statistics.median(lat[name]["p50"]) / 1000
            row["p99_us"] = statistics.median(lat[name]["p99"]) / 1000
        result["rows"].append(row)

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{SIZE} B messages between two processes, Python {result['python']}, "
            f"{result['cpus']} CPUs, medians of {args.reps}"
        )
        print()
        print("| transport | throughput (k msg/s) | one-way p50 (µs) | one-way p99 (µs) |")
        print("|---|---:|---:|---:|")
        for row in result["rows"]:
            k = f"{row['msgs_per_sec'] / 1000:.0f}" if "msgs_per_sec" in row else "–"
            p50 = f"{row['p50_us']:.1f}" if "p50_us" in row else "–"
            p99 = f"{row['p99_us']:.1f}" if "p99_us" in row else "–"
            print(f"| {row['transport']} | {k} | {p50} | {p99} |")
    if wrong:
        print(f"python_bench: {wrong} messages lost, repeated or out of order", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
