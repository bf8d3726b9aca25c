"""asyncio: subscribers and watches wait in the event loop on their
descriptors (loop.add_reader), draining with timeout 0 until empty; the
loop sleeps in its selector while nothing comes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import shmbus
from conftest import BOUND, python_env

PUBLISHER = """
import sys, shmbus
socket, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with shmbus.connect(socket, "async-pub") as bus, bus.publisher(topic) as pub:
    for i in range(n):
        if i % 100 == 50:
            pub.publish_batch([b"%d" % j for j in range(i, i + 10)], timeout=10)
        elif i % 100 in range(51, 60):
            continue  # sent in the batch
        else:
            pub.publish(b"%d" % i, timeout=10)
"""


class SelectCounter:
    """Counts the loop's waits in its selector."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.selector = loop._selector  # type: ignore[attr-defined]
        self.real = self.selector.select
        self.calls = 0
        self.selector.select = self.select

    def select(self, timeout=None):
        self.calls += 1
        return self.real(timeout)


def test_two_subscribers_one_loop_publisher_in_another_process(broker, bus, topic):
    n = 5000
    bus.create(topic, capacity="16KiB")  # small: the publisher waits for them
    subs = [bus.subscriber(topic), bus.subscriber(topic)]

    async def consume(sub):
        got = []
        async for msg in sub:
            got.append(msg)
            if len(got) == n:
                return got
        return got

    async def main():
        loop = asyncio.get_running_loop()
        counter = SelectCounter(loop)
        tasks = [asyncio.create_task(consume(s)) for s in subs]
        await asyncio.sleep(0)  # both waiting before the first message
        proc = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, broker.socket, topic, str(n)],
            env=python_env(),
        )
        try:
            results = await asyncio.wait_for(asyncio.gather(*tasks), BOUND * 3)
        finally:
            assert proc.wait(BOUND) == 0
        expected = [b"%d" % i for i in range(n)]
        for got in results:
            assert got == expected  # none lost, none out of order

        # Idle: both wait for a next message that does not come.
        waiters = [asyncio.create_task(s.areceive()) for s in subs]
        await asyncio.sleep(0.05)
        before = counter.calls
        await asyncio.sleep(1.0)
        idle_wakeups = counter.calls - before
        # A loop that polls would wake thousands of times in a second.
        assert idle_wakeups <= 5, f"{idle_wakeups} selector wake-ups in an idle second"
        assert not any(w.done() for w in waiters)

        with bus.publisher(topic) as pub:
            pub.publish(b"wake up")
        assert await asyncio.wait_for(asyncio.gather(*waiters), BOUND) == [b"wake up"] * 2
        for s in subs:
            assert s.lost == 0

    try:
        asyncio.run(main())
    finally:
        for s in subs:
            s.close()


def test_closing_a_subscriber_ends_async_iteration(bus, topic):
    async def main():
        sub = bus.subscriber(topic)
        seen = []

        async def consume():
            async for msg in sub:
                seen.append(msg)

        task = asyncio.create_task(consume())
        with bus.publisher(topic) as pub:
            pub.publish(b"only")
            while not seen:
                await asyncio.sleep(0.01)
        sub.close()  # while the task waits on the descriptor
        await asyncio.wait_for(task, BOUND)
        assert seen == [b"only"]
        with pytest.raises(shmbus.ClosedError):
            await sub.areceive()

    asyncio.run(main())


def test_a_cancelled_wait_leaves_no_reader_behind(bus, topic):
    async def main():
        loop = asyncio.get_running_loop()
        with bus.subscriber(topic) as sub:
            fd = sub.fileno()
            task = asyncio.create_task(sub.areceive())
            await asyncio.sleep(0.05)
            assert fd in loop._selector.get_map()  # type: ignore[attr-defined]
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert fd not in loop._selector.get_map()  # type: ignore[attr-defined]
            # One waiter at a time per subscriber.
            t1 = asyncio.create_task(sub.areceive())
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError):
                await sub.areceive()
            with bus.publisher(topic) as pub:
                pub.publish(b"x")
            assert await asyncio.wait_for(t1, BOUND) == b"x"

    asyncio.run(main())


def test_areceive_info_and_a_busy_topic_lets_other_tasks_run(bus, topic):
    async def main():
        with bus.subscriber(topic) as sub, bus.publisher(topic) as pub:
            for i in range(300):
                pub.publish(b"%d" % i)
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            t = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            data, info = await sub.areceive_info()
            assert data == b"0"
            start = ticks
            for i in range(1, 300):
                assert await sub.areceive() == b"%d" % i
            # 299 messages all waiting: the ticker still got turns.
            assert ticks - start >= 3
            t.cancel()

    asyncio.run(main())


def test_async_watch(bus, topic):
    async def main():
        with bus.watch(topic + "/*") as w:
            assert (await asyncio.wait_for(w.anext(), BOUND)).kind == shmbus.WatchKind.LISTED
            bus.create(topic + "/new")
            async for ev in w:
                assert ev == (shmbus.WatchKind.CREATED, topic + "/new")
                break
        bus.delete(topic + "/new")

    asyncio.run(main())
