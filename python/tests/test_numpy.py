"""Zero-copy with NumPy: arrays over peeked messages and claimed buffers
point into the topic's shared memory, and the binding will not give that
memory back while an array still uses it. Skipped without NumPy."""

from __future__ import annotations

import pytest

import shmbus
from conftest import BOUND

np = pytest.importorskip("numpy")


def test_frombuffer_over_a_peek_reads_the_floats_in_place(bus, topic):
    with bus.subscriber(topic) as sub, bus.publisher(topic) as pub:
        floats = np.linspace(-1.0, 1.0, 64, dtype="<f4")
        pub.publish(floats)  # an array is bytes-like
        p = sub.peek(timeout=BOUND)
        with p as view:
            arr = np.frombuffer(view, dtype="<f4")
            # No copy: the array's data is the message in shared memory.
            assert arr.ctypes.data == p.address
            assert not arr.flags.owndata and not arr.flags.writeable
            np.testing.assert_array_equal(arr, floats)
            assert arr.sum() == pytest.approx(float(floats.sum()))
            del arr
        assert sub.receive(timeout=0) is None


def test_an_array_alive_at_the_end_keeps_the_message_held(bus, topic):
    """Rule 2: the end of the block raises BufferError while an array uses
    the view, and the message stays held until sub.release() succeeds."""
    with bus.subscriber(topic) as sub, bus.publisher(topic) as pub:
        pub.publish(np.arange(8, dtype="<i8"))
        pub.publish(b"next")
        with pytest.raises(BufferError):
            with sub.peek(timeout=BOUND) as view:
                arr = np.frombuffer(view, dtype="<i8")[2:]  # a view of a view
        assert list(arr) == [2, 3, 4, 5, 6, 7]  # still valid memory
        with pytest.raises(shmbus.BusyError):
            sub.receive(timeout=0)
        with pytest.raises(BufferError):
            sub.release()
        assert list(arr) == [2, 3, 4, 5, 6, 7]
        del arr
        sub.release()
        assert sub.receive(timeout=BOUND) == b"next"


def test_an_array_over_a_claim_publishes_in_place(bus, topic):
    with bus.subscriber(topic) as sub, bus.publisher(topic) as pub:
        c = pub.claim(4 * 16)
        with c as buf:
            out = np.frombuffer(buf, dtype="<f4")
            assert out.ctypes.data == c.address and out.flags.writeable
            out[:] = np.arange(16, dtype="<f4") * 0.5
            del out
        got = np.frombuffer(sub.receive(timeout=BOUND), dtype="<f4")
        np.testing.assert_array_equal(got, np.arange(16, dtype="<f4") * 0.5)
        # An array alive at commit: BufferError, the claim still held.
        c = pub.claim(8)
        with pytest.raises(BufferError):
            with c as buf:
                keep = np.frombuffer(buf, dtype="<u8")
                keep[0] = 42
        assert not c.released
        with pytest.raises(shmbus.BusyError):
            pub.publish(b"x", timeout=0)
        del keep
        c.commit()
        assert np.frombuffer(sub.receive(timeout=BOUND), dtype="<u8")[0] == 42


def test_receive_into_an_array(bus, topic):
    with bus.subscriber(topic) as sub, bus.publisher(topic) as pub:
        pub.publish(np.arange(5, dtype="<u2"))
        dst = np.zeros(8, dtype="<u2")
        assert sub.receive_into(dst, timeout=BOUND) == 10
        assert list(dst[:5]) == [0, 1, 2, 3, 4]
