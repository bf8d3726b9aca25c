"""C and Python on one topic: the command line (a C program on the same
library) publishes 10,000 messages of random sizes and contents to a Python
subscriber, and a Python publisher to the command line; every byte must
arrive as sent, in order. Each direction uses every publishing and every
receiving path of the binding in turn."""

from __future__ import annotations

import random
import subprocess
import threading

from conftest import BOUND, SHMBUS, wait_until

COUNT = 10_000
MAX = 4096


def payloads(seed: int):
    rnd = random.Random(seed)
    sizes = [0, 1, MAX] + [rnd.randrange(0, MAX + 1) for _ in range(COUNT - 3)]
    rnd.shuffle(sizes)
    return [rnd.randbytes(n) for n in sizes]


def frames(msgs) -> bytes:
    return b"".join(len(m).to_bytes(4, "big") + m for m in msgs)


def unframe(data: bytes):
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        out.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    assert i == len(data), "a torn frame at the end"
    return out


def test_cli_publisher_to_python_subscriber(broker, bus, topic):
    sent = payloads(18)
    bus.create(topic, capacity="256KiB", max_message=MAX)
    with bus.subscriber(topic) as sub:
        pub = subprocess.Popen(
            [str(SHMBUS), "--socket", broker.socket, "pub", "--framed", topic],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        feeder = threading.Thread(target=lambda: (pub.stdin.write(frames(sent)), pub.stdin.close()))
        feeder.start()
        got = []
        scratch = bytearray(MAX)
        for i in range(COUNT):
            way = i % 4
            if way == 0:
                got.append(sub.receive(timeout=BOUND))
            elif way == 1:
                with sub.peek(timeout=BOUND) as view:
                    got.append(bytes(view))
            elif way == 2:
                n = sub.receive_into(scratch, timeout=BOUND)
                got.append(None if n is None else bytes(scratch[:n]))
            else:
                data, info = sub.receive_info(timeout=BOUND)
                got.append(data)
            assert got[-1] is not None, f"message {i} did not come"
        feeder.join(BOUND)
        assert pub.wait(BOUND) == 0, pub.stderr.read()
        assert sub.receive(timeout=0) is None
        assert sub.lost == 0
    assert len(got) == COUNT
    for i, (g, s) in enumerate(zip(got, sent)):
        assert g == s, f"message {i} differs ({len(g)} bytes against {len(s)})"


def test_python_publisher_to_cli_subscriber(broker, bus, topic, tmp_path):
    sent = payloads(81)
    bus.create(topic, capacity="256KiB", max_message=MAX)
    out = tmp_path / "frames"
    with open(out, "wb") as f:
        sub = subprocess.Popen(
            [str(SHMBUS), "--socket", broker.socket, "sub", "--framed", "-C", str(COUNT), topic],
            stdout=f,
            stderr=subprocess.PIPE,
        )
    try:
        wait_until(
            lambda: broker.stat(topic)["topic"]["subscribers"] == 1,
            "the command line to subscribe",
        )
        with bus.publisher(topic) as pub:
            for g in range(0, COUNT, 10):
                group = sent[g : g + 10]
                way = (g // 10) % 3
                if way == 0:
                    for m in group:
                        pub.publish(m, timeout=BOUND)
                elif way == 1:
                    for m in group:
                        with pub.claim(len(m), timeout=BOUND) as buf:
                            buf[:] = m
                else:
                    assert pub.publish_batch(group, timeout=BOUND) == len(group)
        assert sub.wait(BOUND * 3) == 0, sub.stderr.read()
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    got = unframe(out.read_bytes())
    assert len(got) == COUNT
    for i, (g, s) in enumerate(zip(got, sent)):
        assert g == s, f"message {i} differs ({len(g)} bytes against {len(s)})"
