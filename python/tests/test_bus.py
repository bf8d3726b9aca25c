"""Every call of the bus against a real broker: topics, publishing (copy,
batch, claim), receiving (copy, into, info, peek), the descriptor,
iteration, watches, closing, threads, and the errors each documents."""

from __future__ import annotations

import array
import ctypes
import errno
import selectors
import threading
import time

import pytest

import shmbus
from conftest import BOUND, wait_until


def pubsub(bus, topic, start="latest", **create):
    if create:
        bus.create(topic, **create)
    sub = bus.subscriber(topic, start)
    pub = bus.publisher(topic)
    return pub, sub


# ---- topics ----------------------------------------------------------------


def test_create_with_settings_and_delete(broker, bus, topic):
    bus.create(
        topic,
        capacity="64KiB",
        max_message=1024,
        mode="queue",
        overflow="reject",
        metadata=True,
    )
    listed = broker.stat(topic)["topic"]
    assert listed["capacity"] == 65536
    assert listed["max_message"] == 1024
    assert listed["mode"] == "queue"
    assert listed["overflow"] == "reject"
    assert listed["metadata"] is True
    assert listed["explicit"] is True
    with pytest.raises(FileExistsError) as ei:
        bus.create(topic)
    assert ei.value.errno == errno.EEXIST and ei.value.filename == topic
    bus.delete(topic)
    with pytest.raises(FileNotFoundError) as ei:
        bus.delete(topic)
    assert ei.value.errno == errno.ENOENT


def test_create_takes_enums_and_ints(broker, bus, topic):
    bus.create(topic, capacity=8192, mode=shmbus.Mode.BROADCAST, overflow=shmbus.Overflow.OVERWRITE)
    listed = broker.stat(topic)["topic"]
    assert (listed["capacity"], listed["mode"], listed["overflow"]) == (8192, "broadcast", "overwrite")
    bus.delete(topic)


@pytest.mark.parametrize("name", ["", "a//b", "a/../b", "..", "sp ace", "x" * 201, "nul\0byte", "é"])
def test_bad_topic_names_are_value_errors(bus, name):
    for call in (bus.create, bus.delete, bus.publisher, bus.subscriber):
        with pytest.raises(ValueError) as ei:
            call(name)
        assert isinstance(ei.value, shmbus.InvalidArgumentError)
        assert ei.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    "settings",
    [
        {"capacity": 5000},  # not a power of two
        {"capacity": 1024},  # under 4 KiB
        {"capacity": "4KiB", "max_message": 2048},  # over capacity / 4
    ],
)
def test_bad_settings_are_refused_by_the_broker(bus, topic, settings):
    with pytest.raises(shmbus.InvalidArgumentError) as ei:
        bus.create(topic, **settings)
    assert ei.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    "settings,exc",
    [
        ({"mode": "fanout"}, ValueError),
        ({"overflow": 7}, ValueError),
        ({"capacity": "1MB"}, ValueError),
        ({"capacity": -1}, ValueError),
        ({"capacity": 1.5}, TypeError),
        ({"max_message": 1 << 33}, ValueError),
    ],
)
def test_bad_settings_are_refused_before_the_call(bus, topic, settings, exc):
    with pytest.raises(exc):
        bus.create(topic, **settings)


def test_parse_size():
    assert shmbus.parse_size("4096") == 4096
    assert shmbus.parse_size("64KiB") == 65536
    assert shmbus.parse_size(" 1 MiB ") == 1 << 20
    assert shmbus.parse_size("2GiB") == 2 << 30
    assert shmbus.parse_size(7) == 7
    for bad in ("1KB", "1.5MiB", "", "MiB"):
        with pytest.raises(ValueError):
            shmbus.parse_size(bad)


def test_no_auto_create_is_file_not_found(start_broker, topic):
    b = start_broker({"auto_create": False})
    with b.connect() as bus:
        with pytest.raises(FileNotFoundError) as ei:
            bus.publisher(topic)
        assert ei.value.errno == errno.ENOENT
        with pytest.raises(FileNotFoundError):
            bus.subscriber(topic)


def test_over_the_topic_limit_is_a_limit_error(start_broker, topic):
    b = start_broker({"limits": {"max_topics": 1}})
    with b.connect() as bus:
        bus.create(topic)
        with pytest.raises(shmbus.LimitError) as ei:
            bus.create(topic + "-2")
        assert ei.value.errno == errno.ENOSPC


def test_no_free_subscriber_slot_is_a_limit_error(start_broker, topic):
    b = start_broker({"limits": {"max_subscribers": 1}})
    with b.connect() as bus:
        with bus.subscriber(topic):
            with pytest.raises(shmbus.LimitError) as ei:
                bus.subscriber(topic)
            assert ei.value.errno == errno.EUSERS


def test_an_implicit_topic_goes_with_its_last_user(broker, bus, topic):
    with bus.publisher(topic) as pub:
        assert pub.topic == topic
        assert broker.stat(topic)["topic"]["explicit"] is False
    r = broker.cli("stat", "--json", topic, check=False)
    assert r.returncode != 0


# ---- publish and receive ---------------------------------------------------


def test_publish_every_bytes_like_and_receive_them(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        payloads = [
            b"bytes",
            bytearray(b"bytearray"),
            memoryview(b"--memoryview--")[2:-2],
            array.array("H", [1, 2, 3]),
            (ctypes.c_char * 5).from_buffer_copy(b"ctype"),
            b"",
        ]
        for p in payloads:
            pub.publish(p, timeout=1.0)
        for p in payloads:
            assert sub.receive(timeout=BOUND) == bytes(p)
        assert sub.receive(timeout=0) is None
        assert sub.receive(timeout=0.01) is None


def test_publish_refuses_what_is_not_bytes_like(bus, topic):
    with bus.publisher(topic) as pub:
        with pytest.raises(TypeError):
            pub.publish("text")  # type: ignore[arg-type]
        with pytest.raises(BufferError):
            pub.publish(memoryview(b"abcdef")[::2])  # not contiguous


def test_timeouts_are_checked(bus, topic):
    with bus.subscriber(topic) as sub:
        for bad in (-1, float("nan")):
            with pytest.raises(ValueError):
                sub.receive(timeout=bad)
        assert sub.receive(timeout=0.0) is None


def test_a_message_larger_than_the_first_buffer(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="4MiB", max_message="1MiB")
    with pub, sub:
        big = bytes(range(256)) * 4096  # 1 MiB
        pub.publish(big)
        pub.publish(b"after")
        assert sub.receive(timeout=BOUND) == big
        assert sub.receive(timeout=BOUND) == b"after"


def test_over_max_message_is_a_message_size_error(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="64KiB", max_message=100)
    with pub, sub:
        assert pub.max_message == 100
        with pytest.raises(shmbus.MessageSizeError) as ei:
            pub.publish(b"x" * 101)
        assert isinstance(ei.value, ValueError) and ei.value.errno == errno.EMSGSIZE
        with pytest.raises(shmbus.MessageSizeError):
            pub.claim(101)
        pub.publish(b"x" * 100)
        assert sub.receive(timeout=BOUND) == b"x" * 100


def fill(pub, size=512):
    """Publishes until the ring is full; returns how many went in."""
    n = 0
    while True:
        try:
            pub.publish(b"f" * size, timeout=0)
        except shmbus.WouldBlockError:
            return n
        n += 1
        assert n < 10000


def test_a_full_ring_times_out_or_would_block(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="4KiB", max_message=1024)
    big = b"x" * 512
    with pub, sub:
        assert fill(pub) > 0
        with pytest.raises(shmbus.WouldBlockError) as ei:
            pub.publish(big, timeout=0)
        assert isinstance(ei.value, BlockingIOError) and ei.value.errno == errno.EAGAIN
        assert isinstance(ei.value, TimeoutError)
        with pytest.raises(TimeoutError) as ei:
            pub.publish(big, timeout=0.02)
        assert type(ei.value) is shmbus.TimeoutError and ei.value.errno == errno.ETIMEDOUT
        with pytest.raises(shmbus.TimeoutError):
            pub.claim(512, timeout=0.02)
        # Room again once read.
        assert sub.receive(timeout=0) == b"f" * 512
        pub.publish(big, timeout=0)


def test_the_reject_policy_would_block(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="4KiB", max_message=1024, overflow="reject")
    with pub, sub:
        fill(pub)
        with pytest.raises(shmbus.WouldBlockError):
            pub.publish(b"x" * 512, timeout=1.0)  # never waits


def test_a_blocked_publisher_goes_on_when_a_reader_makes_room(bus, topic):
    """A wait longer than one slice (the binding waits in slices of
    0.2 s) ends with the publish, not an error."""
    pub, sub = pubsub(bus, topic, capacity="4KiB", max_message=1024)
    with pub, sub:
        n = fill(pub)
        done = threading.Event()

        def publish() -> None:
            pub.publish(b"L" * 512, timeout=BOUND)
            done.set()

        t = threading.Thread(target=publish)
        t.start()
        time.sleep(0.5)  # more than two slices of waiting
        assert not done.is_set()
        for _ in range(n):
            assert sub.receive(timeout=BOUND) == b"f" * 512
        assert sub.receive(timeout=BOUND) == b"L" * 512
        t.join(BOUND)
        assert done.is_set()


def test_publish_batch(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="64KiB", max_message=100)
    with pub, sub:
        msgs = [b"one", bytearray(b"two"), memoryview(b"three"), b"", array.array("b", [4])]
        assert pub.publish_batch(msgs) == 5
        assert pub.publish_batch(iter([b"gen"])) == 1
        assert pub.publish_batch([]) == 0
        for m in msgs + [b"gen"]:
            assert sub.receive(timeout=BOUND) == bytes(m)
        # All or nothing when one is too large.
        with pytest.raises(shmbus.MessageSizeError):
            pub.publish_batch([b"fine", b"x" * 101])
        assert sub.receive(timeout=0) is None


def test_publish_batch_stops_part_way_when_the_ring_fills(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="4KiB", max_message=1024)
    with pub, sub:
        msgs = [i.to_bytes(2, "big") * 50 for i in range(100)]  # 100 B each
        k = pub.publish_batch(msgs, timeout=0.05)
        assert 0 < k < 100
        got = [sub.receive(timeout=0) for _ in range(k)]
        assert got == msgs[:k]
        assert sub.receive(timeout=0) is None
        fill(pub)
        big = [b"y" * 512] * 3
        with pytest.raises(shmbus.WouldBlockError):
            pub.publish_batch(big, timeout=0)
        with pytest.raises(shmbus.TimeoutError):
            pub.publish_batch(big, timeout=0.02)


def test_receive_into(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        pub.publish(b"hello world")
        buf = bytearray(32)
        assert sub.receive_into(buf, timeout=BOUND) == 11
        assert buf[:11] == b"hello world"
        pub.publish(b"too long for four")
        small = bytearray(4)
        with pytest.raises(shmbus.MessageSizeError):
            sub.receive_into(small, timeout=BOUND)
        # It stayed for a larger buffer.
        assert sub.receive_into(memoryview(buf), timeout=0) == 17
        assert bytes(buf[:17]) == b"too long for four"
        assert sub.receive_into(buf, timeout=0) is None
        with pytest.raises(TypeError):
            sub.receive_into(b"read-only", timeout=0)


def test_receive_info_without_and_with_metadata(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        assert pub.id == 0
        pub.publish(b"a")
        pub.publish(b"b")
        data, info = sub.receive_info(timeout=BOUND)
        assert data == b"a" and not info.has_metadata
        assert (info.flags, info.publish_time_ns, info.publisher) == (0, 0, 0)
        data2, info2 = sub.receive_info(timeout=BOUND)
        assert info2.seq == info.seq + 1
        assert sub.receive_info(timeout=0) is None

    meta = topic + "-meta"
    pub, sub = pubsub(bus, meta, capacity="64KiB", max_message=100, metadata=True)
    with pub, sub:
        assert pub.max_message == 84  # 16 bytes of metadata counted in it
        assert pub.id != 0
        before = time.time_ns()
        pub.publish(b"stamped")
        with pub.claim(3) as buf:
            buf[:] = b"zc!"
        after = time.time_ns()
        data, info = sub.receive_info(timeout=BOUND)
        assert data == b"stamped" and info.has_metadata
        assert info.flags == shmbus.MSG_METADATA
        assert info.publisher == pub.id
        assert before <= info.publish_time_ns <= after
        with sub.peek_info(timeout=BOUND) as (view, pinfo):
            assert bytes(view) == b"zc!"
            assert pinfo.publisher == pub.id and pinfo.seq == info.seq + 1


def test_queue_gives_each_message_to_one_consumer(bus, topic):
    bus.create(topic, mode="queue")
    with bus.subscriber(topic) as a, bus.subscriber(topic) as b, bus.publisher(topic) as pub:
        for i in range(10):
            pub.publish(b"%d" % i)
        got = []
        for s in (a, b, a, b) * 5:
            m = s.receive(timeout=0)
            if m is not None:
                got.append(m)
        assert sorted(got, key=int) == [b"%d" % i for i in range(10)]


def test_start_earliest_gets_what_the_ring_holds(bus, topic):
    bus.create(topic)
    with bus.subscriber(topic) as keeper, bus.publisher(topic) as pub:
        pub.publish(b"old")
        with bus.subscriber(topic, start="earliest") as early, bus.subscriber(topic, "latest") as late:
            pub.publish(b"new")
            assert early.receive(timeout=BOUND) == b"old"
            assert early.receive(timeout=BOUND) == b"new"
            assert late.receive(timeout=BOUND) == b"new"
            assert late.receive(timeout=0) is None
        assert keeper.receive(timeout=0) == b"old"
    with pytest.raises(ValueError):
        bus.subscriber(topic, start="middle")


def test_lost_under_overwrite(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="4KiB", max_message=1024, overflow="overwrite")
    with pub, sub:
        assert sub.lost == 0
        for i in range(100):
            pub.publish(b"%03d" % i + b"." * 97, timeout=0)
        got = []
        while (m := sub.receive(timeout=0)) is not None:
            got.append(m)
        assert got[-1].startswith(b"099")
        assert sub.lost > 0
        assert sub.lost + len(got) == 100


# ---- claims ---------------------------------------------------------------


def test_claim_commits_at_the_end_of_the_block(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        claim = pub.claim(5)
        with claim as buf:
            assert isinstance(buf, memoryview) and not buf.readonly and len(buf) == 5
            buf[:] = b"hello"
            assert sub.receive(timeout=0) is None  # not yet published
        assert claim.released
        with pytest.raises(ValueError):
            buf[0]  # released with the claim
        assert sub.receive(timeout=BOUND) == b"hello"
        with pub.claim(0) as empty:
            assert len(empty) == 0
        assert sub.receive(timeout=BOUND) == b""


def test_claim_is_dropped_when_the_block_raises(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        with pytest.raises(KeyError):
            with pub.claim(7) as buf:
                buf[:] = b"dropped"
                raise KeyError("producer failed")
        pub.publish(b"next", timeout=1.0)  # the writer lock was given back
        assert sub.receive(timeout=BOUND) == b"next"
        assert sub.receive(timeout=0) is None
        c = pub.claim(3)
        c.view[:] = b"abc"
        c.abort()
        with pytest.raises(ValueError):
            c.commit()  # ended already
        c = pub.claim(3)
        c.view[:] = b"xyz"
        c.commit()
        assert sub.receive(timeout=BOUND) == b"xyz"


def test_one_claim_at_a_time_and_no_publish_under_it(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        with pub.claim(4) as buf:
            buf[:] = b"held"
            with pytest.raises(shmbus.BusyError) as ei:
                pub.claim(4, timeout=0)
            assert ei.value.errno == errno.EBUSY
            with pytest.raises(shmbus.BusyError):
                pub.publish(b"x", timeout=0)
            with pytest.raises(shmbus.BusyError):
                pub.publish_batch([b"x"], timeout=0)
        assert sub.receive(timeout=BOUND) == b"held"


def test_a_claim_belongs_to_its_thread(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        c = pub.claim(4)
        c.view[:] = b"mine"
        errors = []

        def other() -> None:
            for end in (c.commit, c.abort):
                try:
                    end()
                except shmbus.Error as e:
                    errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join(BOUND)
        assert [e.errno for e in errors] == [errno.EINVAL, errno.EINVAL]
        assert not c.released and bytes(c.view) == b"mine"
        c.commit()
        assert sub.receive(timeout=BOUND) == b"mine"


def test_close_drops_a_held_claim(bus, topic):
    sub = bus.subscriber(topic)
    pub = bus.publisher(topic)
    c = pub.claim(4)
    pub.close()
    assert c.released
    with pytest.raises(ValueError):
        c.view[0]
    with bus.publisher(topic) as pub2:
        pub2.publish(b"free", timeout=BOUND)
    assert sub.receive(timeout=BOUND) == b"free"
    sub.close()


# ---- peeks ------------------------------------------------------------------


def test_peek_and_release(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        pub.publish(b"zero-copy")
        pub.publish(b"second")
        p = sub.peek(timeout=BOUND)
        assert isinstance(p, shmbus.Peeked) and len(p) == 9 and p.info is None
        with p as view:
            assert view.readonly and bytes(view) == b"zero-copy"
            with pytest.raises(TypeError):
                view[0] = 1
            # Held, not consumed: the subscriber is busy meanwhile.
            with pytest.raises(shmbus.BusyError):
                sub.receive(timeout=0)
            with pytest.raises(shmbus.BusyError):
                sub.peek(timeout=0)
        assert p.released
        p.release()  # a second release does nothing
        assert sub.receive(timeout=BOUND) == b"second"
        with pytest.raises(shmbus.InvalidArgumentError):
            sub.release()  # nothing held


def test_peek_with_nothing_there_raises_a_timeout(bus, topic):
    with bus.subscriber(topic) as sub:
        with pytest.raises(shmbus.WouldBlockError):
            sub.peek(timeout=0)
        with pytest.raises(TimeoutError) as ei:
            sub.peek(timeout=0.02)
        assert ei.value.errno == errno.ETIMEDOUT


def test_a_peeked_view_is_released_with_the_block(bus, topic):
    """Rule 1: using the view after its with block is a ValueError (the
    rule of released memoryviews), never a crash, even once the subscriber
    is closed and its memory unmapped."""
    pub, sub = pubsub(bus, topic)
    with pub:
        pub.publish(b"short-lived")
        with sub.peek(timeout=BOUND) as view:
            kept = view
        sub.close()
        for use in (lambda: kept[0], lambda: bytes(kept), lambda: kept[1:3], lambda: kept.tobytes()):
            with pytest.raises(ValueError):
                use()


def test_an_export_alive_at_the_end_keeps_the_message(bus, topic):
    """Rule 2, without NumPy: a slice or a memoryview of the view still
    alive at the end of the block is a BufferError, and the message stays
    held until sub.release() succeeds."""
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        pub.publish(b"abcdef")
        pub.publish(b"next")
        with pytest.raises(BufferError):
            with sub.peek(timeout=BOUND) as view:
                part = view[1:4]
        assert bytes(part) == b"bcd"  # still valid: not given back
        with pytest.raises(shmbus.BusyError):
            sub.receive(timeout=0)
        with pytest.raises(BufferError):
            sub.release()
        with pytest.raises(BufferError):
            sub.close()  # would unmap what part points at
        del part
        sub.release()
        assert sub.receive(timeout=BOUND) == b"next"
        pub.publish(b"more")
        pub.publish(b"last")
        with pytest.raises(BufferError):
            with sub.peek(timeout=BOUND) as view:
                again = memoryview(view)
        del again
        sub.release()
        assert sub.receive(timeout=BOUND) == b"last"


def test_a_view_overwritten_while_held_is_stale(bus, topic):
    """Rule 3: under the overwrite policy a view whose bytes were
    overwritten raises StaleError at release."""
    pub, sub = pubsub(bus, topic, capacity="4KiB", max_message=1024, overflow="overwrite")
    with pub, sub:
        pub.publish(b"A" * 100)
        with pytest.raises(shmbus.StaleError) as ei:
            with sub.peek(timeout=BOUND) as view:
                assert bytes(view) == b"A" * 100
                for _ in range(100):
                    pub.publish(b"B" * 100, timeout=0)
        assert ei.value.errno == errno.ESTALE
        with pytest.raises(ValueError):
            view[0]  # released all the same
        # The stale message counts as lost; the subscriber goes on.
        assert sub.receive(timeout=BOUND) == b"B" * 100
        assert sub.lost > 1


# ---- the descriptor, iteration, closing, threads ---------------------------


def test_fileno_polls_readable_while_messages_wait(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        fd = sub.fileno()
        assert fd >= 0 and sub.fileno() == fd
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            assert sub.receive(timeout=0) is None  # clears it
            assert sel.select(0) == []
            pub.publish(b"one")
            pub.publish(b"two")
            assert len(sel.select(BOUND)) == 1
            assert sub.receive(timeout=0) == b"one"
            assert len(sel.select(0)) == 1  # level-triggered: still one there
            assert sub.receive(timeout=0) == b"two"
            assert sub.receive(timeout=0) is None
            assert sel.select(0) == []
        finally:
            sel.close()


def test_eviction_is_an_evicted_error(broker, bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        fd = sub.fileno()
        slot = broker.stat(topic)["subscribers"][0]["slot"]
        broker.cli("evict", topic, str(slot))
        with pytest.raises(shmbus.EvictedError) as ei:
            sub.receive(timeout=BOUND)
        assert ei.value.errno == errno.EIDRM
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        assert len(sel.select(BOUND)) == 1
        sel.close()
        with pytest.raises(shmbus.EvictedError):
            sub.peek(timeout=0)


def test_iteration_ends_when_closed_from_another_thread(bus, topic):
    pub, sub = pubsub(bus, topic)
    got = []

    def consume() -> None:
        for msg in sub:
            got.append(msg)

    t = threading.Thread(target=consume)
    t.start()
    with pub:
        for i in range(5):
            pub.publish(b"%d" % i)
        wait_until(lambda: len(got) == 5, "five messages")
    sub.close()  # while the consumer waits in receive()
    t.join(BOUND)
    assert not t.is_alive()
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    assert sub.closed
    with pytest.raises(shmbus.ClosedError) as ei:
        sub.receive(timeout=0)
    assert isinstance(ei.value, ValueError) and ei.value.errno == errno.EBADF


def test_iteration_ends_when_the_loop_closes_it(bus, topic):
    pub, sub = pubsub(bus, topic)
    with pub:
        pub.publish(b"a")
        pub.publish(b"stop")
        seen = []
        for msg in sub:
            seen.append(msg)
            if msg == b"stop":
                sub.close()
        assert seen == [b"a", b"stop"]


def test_a_closed_object_raises_closed_error(broker, bus, topic):
    pub, sub = pubsub(bus, topic)
    pub.close()
    pub.close()  # twice is fine
    sub.close()
    for call in (
        lambda: pub.publish(b"x"),
        lambda: pub.publish_batch([b"x"]),
        lambda: pub.claim(1),
        lambda: sub.receive(0),
        lambda: sub.receive_into(bytearray(1), 0),
        lambda: sub.receive_info(0),
        lambda: sub.peek(0),
        lambda: sub.release(),
        lambda: sub.lost,
        lambda: sub.fileno(),
    ):
        with pytest.raises(shmbus.ClosedError):
            call()
    b2 = broker.connect()
    b2.close()
    with pytest.raises(shmbus.ClosedError):
        b2.create("x")


def test_publishers_and_subscribers_outlive_their_bus(broker, topic):
    bus = broker.connect()
    pub, sub = pubsub(bus, topic)
    bus.close()
    with pub, sub:
        pub.publish(b"still here")
        assert sub.receive(timeout=BOUND) == b"still here"


def test_the_gil_is_released_while_the_library_waits(bus, topic, monkeypatch):
    """One receive call that waits in the library (a slice longer than the
    test) while this thread publishes what it waits for: possible only if
    the waiting thread let go of the GIL."""
    lib = shmbus._lib.load()
    assert type(lib) is ctypes.CDLL
    for name in ("shmbus_receive", "shmbus_publish", "shmbus_peek", "shmbus_map_lock"):
        assert not getattr(lib, name)._flags_ & ctypes._FUNCFLAG_PYTHONAPI
    monkeypatch.setattr(shmbus._common, "SLICE_MS", 60_000)
    monkeypatch.setattr(shmbus.bus, "SLICE_MS", 60_000)
    pub, sub = pubsub(bus, topic)
    with pub, sub:
        got = []
        t = threading.Thread(target=lambda: got.append(sub.receive(timeout=30)))
        t.start()
        wait_until(lambda: sub._calls, "the receive to start")
        time.sleep(0.05)  # let it get into the library
        pub.publish(b"while you wait")
        t.join(BOUND)
        assert not t.is_alive()
        assert got == [b"while you wait"]


def test_threads_publish_on_one_publisher(bus, topic):
    pub, sub = pubsub(bus, topic, capacity="64KiB")
    with pub, sub:
        def produce(k: int) -> None:
            for i in range(500):
                pub.publish(b"%d:%d" % (k, i), timeout=BOUND)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        got = [sub.receive(timeout=BOUND) for _ in range(2000)]
        for t in threads:
            t.join(BOUND)
        for k in range(4):
            mine = [g for g in got if g.startswith(b"%d:" % k)]
            assert mine == [b"%d:%d" % (k, i) for i in range(500)]


# ---- watches -------------------------------------------------------------


def test_watch_reports_what_exists_then_changes(bus, topic):
    bus.create(topic + "/a")
    with bus.watch(topic + "/*") as w:
        assert w.pattern == topic + "/*"
        events = []
        while True:
            ev = w.next(timeout=BOUND)
            assert ev is not None
            events.append(ev)
            if ev.kind == shmbus.WatchKind.LISTED:
                break
        assert (shmbus.WatchKind.CREATED, topic + "/a") in events
        assert events[-1] == (shmbus.WatchKind.LISTED, "")
        assert w.next(timeout=0) is None
        sel = selectors.DefaultSelector()
        sel.register(w.fileno(), selectors.EVENT_READ)
        bus.create(topic + "/b")
        bus.create(topic + "/b/deeper")  # not one level
        assert len(sel.select(BOUND)) == 1
        sel.close()
        ev = w.next(timeout=BOUND)
        while ev == (shmbus.WatchKind.CREATED, topic + "/a"):  # told twice is allowed
            ev = w.next(timeout=BOUND)
        assert ev == (shmbus.WatchKind.CREATED, topic + "/b")
        bus.delete(topic + "/b")
        assert w.next(timeout=BOUND) == (shmbus.WatchKind.DELETED, topic + "/b")
        assert w.next(timeout=0.05) is None
    bus.delete(topic + "/a")
    bus.delete(topic + "/b/deeper")


def test_watch_iteration_ends_when_closed(bus, topic):
    w = bus.watch(topic + "/>")
    seen = []

    def follow() -> None:
        for ev in w:
            seen.append(ev)

    t = threading.Thread(target=follow)
    t.start()
    wait_until(lambda: seen, "LISTED")
    w.close()
    t.join(BOUND)
    assert not t.is_alive()
    assert seen[0].kind == shmbus.WatchKind.LISTED


def test_a_bad_pattern_is_a_value_error(bus):
    for bad in ("a/>/b", "", "a//b"):
        with pytest.raises(shmbus.InvalidArgumentError):
            bus.watch(bad)
