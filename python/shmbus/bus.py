"""The message bus: connections, topics, publishers, subscribers, watches.

Each class wraps one object of libshmbus (include/shmbus/shmbus.h) and
each method one call, with the library's rules: timeouts are seconds here
(None: as long as it takes, 0: do not wait) where the library takes
milliseconds, and every error is a :class:`shmbus.Error`.
"""

from __future__ import annotations

import array
import asyncio
import ctypes
import errno
import math
import os
import re
import time
from ctypes import byref, c_int, c_size_t, c_void_p, sizeof
from enum import IntEnum
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Iterable,
    Iterator,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from . import _lib
from ._common import (
    EAGAIN,
    ETIMEDOUT,
    SLICE_MS,
    Handle,
    Timeout,
    check,
    encode_name,
    exported,
    get_ident,
    give_back,
    timeout_ms,
)
from .errors import ClosedError, error_for

if TYPE_CHECKING:
    from .reqrep import Requester, Server

BytesLike = Union[bytes, bytearray, memoryview, Any]
"""bytes, bytearray, memoryview or any other object with the buffer
protocol whose bytes are contiguous (array.array, a NumPy array, mmap)."""

TOPIC_MAX = 200
"""The longest topic name (SHMBUS_TOPIC_MAX)."""

MSG_METADATA = 1
"""MessageInfo.flags: the message carries metadata (SHMBUS_MSG_METADATA)."""

EMSGSIZE = -errno.EMSGSIZE

# struct iovec is a pointer and a size_t: an array of unsigned integers of
# that width, two per message.
_IOV_CODE = next(c for c in "LQI" if array.array(c).itemsize == ctypes.sizeof(c_void_p))
assert ctypes.sizeof(c_size_t) == ctypes.sizeof(c_void_p)

_from_memory = _lib.from_memory
_READ = _lib.PyBUF_READ
_WRITE = _lib.PyBUF_WRITE

# Consecutive messages areceive() returns without waiting before it lets the
# event loop run the other tasks once.
_ASYNC_STREAK = 64


class Mode(IntEnum):
    """A topic's mode."""

    BROADCAST = 1
    """Every subscriber sees every message."""
    QUEUE = 2
    """Each message goes to one subscriber."""


class Overflow(IntEnum):
    """What a publisher does when the ring is full."""

    BLOCK = 1
    """Wait for the slowest subscriber (lossless)."""
    OVERWRITE = 2
    """Never wait; slow subscribers lose the oldest messages."""
    REJECT = 3
    """Fail at once (shmbus.WouldBlockError)."""


class Start(IntEnum):
    """Where a new subscriber starts."""

    LATEST = 0
    """With the next message published."""
    EARLIEST = 1
    """With the oldest message the ring still holds."""


class WatchKind(IntEnum):
    """The kind of a :class:`WatchEvent`."""

    CREATED = 1
    """A matching topic exists (now)."""
    DELETED = 2
    """A matching topic was removed."""
    LISTED = 3
    """Every topic that existed when the watch opened has been told."""
    OVERFLOW = 4
    """Events were lost: close the watch and open it again."""


class WatchEvent(NamedTuple):
    """One event of a :class:`Watch`: its kind and the topic's name (""
    for LISTED and OVERFLOW)."""

    kind: WatchKind
    topic: str


class MessageInfo(NamedTuple):
    """What a message carries besides its bytes (struct shmbus_msg_info)."""

    seq: int
    """The topic's sequence number, consecutive over all publishers: a gap
    is messages this subscriber did not get."""
    flags: int
    """MSG_METADATA when the topic carries metadata, else 0."""
    publish_time_ns: int
    """CLOCK_REALTIME of the publish (of the commit, for a claim), in
    nanoseconds since the epoch, as the publisher wrote it; 0 without
    metadata."""
    publisher: int
    """The publisher's client id at the broker (Publisher.id), as the
    publisher wrote it; 0 without metadata."""

    @property
    def has_metadata(self) -> bool:
        """True when publish_time_ns and publisher are set."""
        return bool(self.flags & MSG_METADATA)


_SIZE_RE = re.compile(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*\Z")
_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def parse_size(value: Union[int, str]) -> int:
    """A size in bytes: an int, or a string such as "4096", "64KiB",
    "1MiB", "1GiB" (KB and MB are refused as ambiguous, as the broker
    does)."""
    if isinstance(value, bool):
        raise TypeError("a size is an int or a string such as '1MiB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value}")
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            return int(m.group(1)) * _UNITS[m.group(2)]
        raise ValueError(
            f"bad size {value!r}: bytes, or a number with KiB, MiB or GiB"
        )
    raise TypeError("a size is an int or a string such as '1MiB'")


def _choice(cls: Any, value: Any, what: str) -> int:
    if isinstance(value, str):
        try:
            return int(cls[value.upper()])
        except KeyError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(cls(value))
        except ValueError:
            pass
    names = ", ".join(repr(m.name.lower()) for m in cls)
    raise ValueError(f"{what} must be one of {names}, not {value!r}")


def _info(raw: _lib.MsgInfo) -> MessageInfo:
    return MessageInfo(raw.seq, raw.flags, raw.publish_time_ns, raw.publisher)


class _AsyncReadable:
    """Waiting for a descriptor to poll readable in an asyncio loop
    (loop.add_reader), one waiter at a time."""

    _waiter: Optional[Tuple[asyncio.AbstractEventLoop, int, "asyncio.Future[None]"]]

    def fileno(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    async def _readable(self) -> None:
        if self._waiter is not None:
            raise RuntimeError(
                f"another task is already waiting on this {type(self).__name__}"
            )
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        fut: "asyncio.Future[None]" = loop.create_future()

        def ready() -> None:
            loop.remove_reader(fd)
            if not fut.done():
                fut.set_result(None)

        waiter = (loop, fd, fut)
        loop.add_reader(fd, ready)
        self._waiter = waiter
        try:
            await fut
        finally:
            if self._waiter is waiter:
                self._waiter = None
                loop.remove_reader(fd)

    def _wake_closed(self, err: BaseException) -> None:
        """Stops a task waiting in _readable() (before the descriptor goes):
        it raises ``err``. Called on the loop's thread."""
        waiter = self._waiter
        if waiter is None:
            return
        self._waiter = None
        loop, fd, fut = waiter
        if loop.is_closed():
            return
        loop.remove_reader(fd)
        if not fut.done():
            fut.set_exception(err)


class _Lent:
    """Memory of the ring lent to Python as a memoryview: a peeked message
    or a claimed buffer. Its view is given back (released) when the message
    is released or the claim committed or aborted, and only if no slice or
    NumPy array of it is left (else BufferError, and it stays lent)."""

    __slots__ = ("view", "address", "_done")

    view: memoryview
    address: int

    def __len__(self) -> int:
        return len(self.view)

    @property
    def released(self) -> bool:
        """True once the message was released or the claim ended."""
        return self._done


class Peeked(_Lent):
    """A message held by :meth:`Subscriber.peek`: read-only bytes in the
    topic's shared memory, not consumed until released.

    As a context manager it gives the view (``peek``) or the pair
    ``(view, info)`` (``peek_info``) and releases the message at the end of
    the block. The view is released with it: using it afterwards raises
    ValueError. If a slice or NumPy array of the view is still alive then,
    the end of the block raises BufferError and the message stays held
    (the subscriber's receive and peek say BusyError) until
    :meth:`release` (or :meth:`Subscriber.release`) succeeds once they are
    gone. :class:`shmbus.StaleError` at release means the bytes were
    overwritten while held (overwrite policy) or the message was another
    queue consumer's: discard what was read.
    """

    __slots__ = ("info", "_sub")

    info: Optional[MessageInfo]

    def __init__(
        self,
        sub: "Subscriber",
        view: memoryview,
        address: int,
        info: Optional[MessageInfo],
    ) -> None:
        self.view = view  # the bytes, in the topic's shared memory
        self.address = address  # their address
        self._done = False
        self._sub = sub
        self.info = info  # the MessageInfo of peek_info(); None for peek()

    def release(self) -> None:
        """Consumes the message and releases its view; does nothing if
        it was released already. BufferError while the view is still
        used (nothing is released then); StaleError, EvictedError as
        Subscriber.release()."""
        if self._done:
            return
        self._sub._release_peek(self)

    def __enter__(self) -> Any:
        if self.info is None:
            return self.view
        return self.view, self.info

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._done else "held"
        return f"<shmbus.Peeked {len(self.view) if not self._done else '-'} bytes, {state}>"


class Claim(_Lent):
    """Room for one message in the ring, reserved by
    :meth:`Publisher.claim`: write the message into :attr:`view` (a
    writable memoryview of exactly the claimed size), then commit() to
    publish it or abort() to publish nothing.

    As a context manager it gives the view, commits at the end of the block
    and aborts if the block raises. The view is released either way (using
    it afterwards raises ValueError); BufferError, with the claim still
    held, while a slice or NumPy array of it is alive. Other publishers of
    the topic wait while a claim is held: keep it short. commit() and
    abort() must run on the thread that claimed.
    """

    __slots__ = ("_pub", "_thread")

    def __init__(self, pub: "Publisher", view: memoryview, address: int) -> None:
        self.view = view  # the claimed bytes, in the topic's shared memory
        self.address = address  # their address
        self._done = False
        self._pub = pub
        self._thread = get_ident()

    def commit(self) -> None:
        """Publishes the message."""
        self._pub._end_claim(self, commit=True)

    def abort(self) -> None:
        """Drops the message: nothing is published."""
        self._pub._end_claim(self, commit=False)

    def __enter__(self) -> memoryview:
        return self.view

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if not self._done:
            self._pub._end_claim(self, commit=exc_type is None)

    def __repr__(self) -> str:
        state = "ended" if self._done else "held"
        return f"<shmbus.Claim {len(self.view) if not self._done else '-'} bytes, {state}>"


class Publisher(Handle):
    """A topic opened to publish (shmbus_pub_open). Publishing makes no
    system call and does not involve the broker. Several threads may
    publish on one Publisher at once; a claim belongs to one thread.

    Close it (or use it as a context manager) when done; the broker keeps
    an implicit topic while it has users.
    """

    topic: str
    """The topic's name."""
    max_message: int
    """The largest message the topic takes (shmbus_pub_max_message)."""
    id: int
    """The publisher id written into each message's metadata, which
    subscribers read as MessageInfo.publisher; 0 when the topic carries no
    metadata (shmbus_pub_id). It stays the same for the handle's life."""

    def __init__(self, h: int, topic: str) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_pub_close)
        self.topic = topic
        self.max_message = lib.shmbus_pub_max_message(h)
        self.id = lib.shmbus_pub_id(h)
        self._publish = lib.shmbus_publish
        self._batch = lib.shmbus_publish_batch
        self._claim_fn = lib.shmbus_claim
        self._commit = lib.shmbus_commit
        self._abort = getattr(lib, "shmbus_abort", None)
        self._claim: Optional[Claim] = None
        self._out = c_void_p()

    def publish(self, data: BytesLike, timeout: Timeout = None) -> None:
        """Publishes ``data`` (any contiguous bytes-like object) as one
        message. Under the block policy, waits up to ``timeout`` seconds
        for room (None: as long as it takes; 0: not at all).

        Raises :class:`TimeoutError` (no room in time),
        :class:`WouldBlockError` (full and timeout 0, or the reject
        policy), :class:`MessageSizeError` (over max_message),
        :class:`BusyError` (this thread holds a claim on this publisher),
        :class:`CorruptError`, TypeError (not bytes-like), BufferError
        (not contiguous)."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        calls = self._calls
        calls.append(get_ident())
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            if type(data) is bytes:
                pb = None
                ptr: Any = data
                n = len(data)
            else:
                pb = _lib.PyBuffer()
                _lib.get_buffer(data, byref(pb), _lib.PyBUF_SIMPLE)
                ptr, n = pb.buf, pb.len
            try:
                step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
                r = self._publish(h, ptr, n, step)
                if r == ETIMEDOUT and step != ms:
                    r = self._wait_more(self._publish, (h, ptr, n), ms)
            finally:
                if pb is not None:
                    _lib.release_buffer(byref(pb))
            if r < 0:
                raise error_for(r, self.topic)
        finally:
            calls.pop()
            if self._closing and not calls:
                self._finish_close()

    def publish_batch(self, messages: Iterable[BytesLike], timeout: Timeout = None) -> int:
        """Publishes ``messages`` in order, as many as fit at a time under
        one lock and made visible with one store (shmbus_publish_batch):
        for many small messages at once. The batch is checked first: one
        message over max_message publishes none (MessageSizeError).

        Returns how many were published: all of them, or fewer when the
        timeout ran out part-way (the rest were not published). Raises as
        publish() when none was. The messages are copied into one buffer
        first; for large messages publish() or claim() them one by one."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        parts = [m if type(m) is bytes else memoryview(m).cast("B") for m in messages]
        blob = b"".join(parts)
        n = len(parts)
        h = self._enter()
        try:
            base = ctypes.cast(ctypes.c_char_p(blob), c_void_p).value or 0
            iov = array.array(_IOV_CODE)
            off = 0
            for p in parts:
                iov.append(base + off)
                iov.append(len(p))
                off += len(p)
            addr = iov.buffer_info()[0]
            stride = 2 * iov.itemsize
            if ms == 0:
                r = self._batch(h, addr, n, 0)
                if r < 0:
                    raise error_for(r, self.topic)
                return r
            done = 0
            deadline = None if ms < 0 else time.monotonic() + ms / 1000
            while True:
                step = SLICE_MS
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        r = ETIMEDOUT
                        break
                    step = min(SLICE_MS, max(1, math.ceil(left * 1000)))
                r = self._batch(h, addr + done * stride, n - done, step)
                if r >= 0:
                    done += r
                    if done == n:
                        break
                elif r != ETIMEDOUT:
                    break
                if self._closing:
                    r = ETIMEDOUT
                    break
            if done == 0 and n > 0:
                if self._closing:
                    raise self._closed_error()
                raise error_for(r, self.topic)
            return done
        finally:
            self._leave()

    def claim(self, size: int, timeout: Timeout = None) -> Claim:
        """Reserves ``size`` bytes in the ring for one message and returns
        the :class:`Claim`, whose view is writable shared memory
        (shmbus_claim): zero-copy publishing.

        ``with pub.claim(64) as buf:`` fills ``buf`` and commits at the
        end of the block, or aborts if the block raises. Errors as for
        publish(), and BusyError while a claim is held."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        if size < 0:
            raise ValueError(f"a claim's size cannot be negative: {size}")
        calls = self._calls
        calls.append(get_ident())
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            out = self._out
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            r = self._claim_fn(h, size, out, step)
            if r == ETIMEDOUT and step != ms:
                r = self._wait_more(self._claim_fn, (h, size, out), ms)
            if r < 0:
                raise error_for(r, self.topic)
            address = out.value or 0
            if size:
                view = _from_memory(address, size, _WRITE)
            else:
                view = memoryview(bytearray())
            claim = Claim(self, view, address)
            self._claim = claim
            return claim
        finally:
            calls.pop()
            if self._closing and not calls:
                self._finish_close()

    def _end_claim(self, claim: Claim, commit: bool) -> None:
        if claim._done:
            raise ValueError("this claim was committed or aborted already")
        if claim._thread != get_ident():
            # The library's rule (it would say EINVAL), checked before the
            # view is given back, so that the claiming thread can go on.
            raise error_for(
                errno.EINVAL,
                self.topic,
                "a claim is committed or aborted by the thread that claimed it",
            )
        calls = self._calls
        calls.append(get_ident())
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            give_back(claim.view, "the claimed buffer")
            if commit:
                r = self._commit(h)
            elif self._abort is not None:
                r = self._abort(h)
            else:
                r = -errno.ENOTSUP
            claim._done = True
            if self._claim is claim:
                self._claim = None
            if r < 0:
                raise error_for(r, self.topic)
        finally:
            calls.pop()
            if self._closing and not calls:
                self._finish_close()

    def _before_close(self) -> None:
        c = self._claim
        if c is not None and exported(c.view):
            raise BufferError(
                "a claimed buffer is still in use: delete its slices "
                "and arrays before closing the publisher"
            )

    def _release_memory(self) -> None:
        c = self._claim
        if c is not None:
            c.view.release()
            c._done = True  # the library drops a held claim at close
            self._claim = None

    def __enter__(self) -> "Publisher":
        return self

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"max_message={self.max_message}"
        return f"<shmbus.Publisher {self.topic!r} {state}>"


class Subscriber(Handle, _AsyncReadable):
    """A topic opened to receive (shmbus_sub_open). Receiving makes no
    system call while messages wait and does not involve the broker. One
    thread at a time may use a Subscriber; close() may come from another.

    Iterating (``for msg in sub``) receives until the subscriber is closed;
    ``async for msg in sub`` does the same in an asyncio loop.
    """

    topic: str
    """The topic's name."""

    def __init__(self, h: int, topic: str) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_sub_close)
        self.topic = topic
        self._recv = lib.shmbus_receive
        self._recv_info = lib.shmbus_receive_info
        self._peek_fn = lib.shmbus_peek
        self._peek_info_fn = lib.shmbus_peek_info
        self._release_fn = lib.shmbus_release
        self._lost = lib.shmbus_sub_lost
        self._fd_fn = lib.shmbus_sub_fd
        self._set_buffer(65536)
        self._raw_info = _lib.MsgInfo(size=sizeof(_lib.MsgInfo))
        self._data = c_void_p()
        self._len = c_size_t()
        self._held: Optional[Peeked] = None
        self._fd: Optional[int] = None
        self._waiter = None
        self._streak = 0

    def _set_buffer(self, cap: int) -> None:
        self._cap = cap
        self._buf = ctypes.create_string_buffer(cap)
        self._addr = ctypes.addressof(self._buf)
        self._mv = memoryview(self._buf)

    def _receive_raw(self, h: int, ms: int, info: bool) -> int:
        """shmbus_receive(_info) into the subscriber's buffer, which grows
        until the message fits (it stays in the ring meanwhile)."""
        while True:
            if info:
                fn: Any = self._recv_info
                args: tuple = (h, self._addr, self._cap, self._raw_info)
            else:
                fn, args = self._recv, (h, self._addr, self._cap)
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            n = fn(*args, step)
            if n == ETIMEDOUT and step != ms:
                n = self._wait_more(fn, args, ms)
            if n != EMSGSIZE or self._cap >= 1 << 31:
                return n
            self._set_buffer(self._cap * 2)

    def receive(self, timeout: Timeout = None) -> Optional[bytes]:
        """The next message as bytes, waiting up to ``timeout`` seconds
        (None: as long as it takes; 0: not at all); None when none came in
        time.

        Raises :class:`EvictedError` (evicted by the broker: close and
        subscribe again), :class:`BusyError` (a peek is held),
        :class:`CorruptError` (a damaged message, skipped and counted in
        lost on a checksummed topic), ClosedError (closed, also by another
        thread during the wait)."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        calls = self._calls
        calls.append(get_ident())
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            n = self._recv(h, self._addr, self._cap, step)
            if n < 0:
                if n == ETIMEDOUT and step != ms:
                    n = self._wait_more(self._recv, (h, self._addr, self._cap), ms)
                if n == EMSGSIZE:  # grow the buffer: the message stays
                    n = self._receive_raw(h, ms, False)
                if n < 0:
                    if n == EAGAIN or n == ETIMEDOUT:
                        return None
                    raise error_for(n, self.topic)
            return self._mv[:n].tobytes()
        finally:
            calls.pop()
            if self._closing and not calls:
                self._finish_close()

    def receive_info(self, timeout: Timeout = None) -> Optional[Tuple[bytes, MessageInfo]]:
        """As receive(), with the message's :class:`MessageInfo`: a pair
        ``(data, info)``, or None when no message came in time."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        h = self._enter()
        try:
            n = self._receive_raw(h, ms, True)
            if n >= 0:
                return self._mv[:n].tobytes(), _info(self._raw_info)
            if n == EAGAIN or n == ETIMEDOUT:
                return None
            raise error_for(n, self.topic)
        finally:
            self._leave()

    def receive_into(self, buffer: BytesLike, timeout: Timeout = None) -> Optional[int]:
        """Copies the next message into ``buffer`` (a writable, contiguous
        bytes-like object: bytearray, memoryview, NumPy array) and returns
        its length; None when no message came in time. A message longer
        than the buffer stays in the ring and raises
        :class:`MessageSizeError`. Other errors as receive()."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        pb = _lib.PyBuffer()
        try:
            _lib.get_buffer(buffer, byref(pb), _lib.PyBUF_WRITABLE)
        except BufferError as e:
            raise TypeError(
                f"receive_into() needs a writable, contiguous bytes-like object: {e}"
            ) from None
        try:
            h = self._enter()
            try:
                args = (h, pb.buf, pb.len)
                step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
                n = self._recv(*args, step)
                if n == ETIMEDOUT and step != ms:
                    n = self._wait_more(self._recv, args, ms)
            finally:
                self._leave()
        finally:
            _lib.release_buffer(byref(pb))
        if n >= 0:
            return n
        if n == EAGAIN or n == ETIMEDOUT:
            return None
        raise error_for(n, self.topic)

    def _peek(self, timeout: Timeout, info: bool) -> Peeked:
        ms = -1 if timeout is None else timeout_ms(timeout)
        calls = self._calls
        calls.append(get_ident())
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            if info:
                fn: Any = self._peek_info_fn
                args: tuple = (h, self._data, self._len, self._raw_info)
            else:
                fn, args = self._peek_fn, (h, self._data, self._len)
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            r = fn(*args, step)
            if r == ETIMEDOUT and step != ms:
                r = self._wait_more(fn, args, ms)
            if r < 0:
                raise error_for(r, self.topic)
            address = self._data.value
            size = self._len.value
            view = _from_memory(address, size, _READ) if size else memoryview(b"")
            p = Peeked(self, view, address or 0, _info(self._raw_info) if info else None)
            self._held = p
            return p
        finally:
            calls.pop()
            if self._closing and not calls:
                self._finish_close()

    def peek(self, timeout: Timeout = None) -> Peeked:
        """Zero-copy receiving: the next message, left in shared memory and
        held (not consumed) until released, waiting up to ``timeout``
        seconds (shmbus_peek). ``with sub.peek() as view:`` gives a
        read-only memoryview and releases the message at the end of the
        block; see :class:`Peeked` for the rules.

        Raises :class:`TimeoutError` when no message came in time
        (:class:`WouldBlockError` for timeout 0: a with statement has no
        way to say "nothing"), and as receive()."""
        return self._peek(timeout, False)

    def peek_info(self, timeout: Timeout = None) -> Peeked:
        """As peek(), with the message's :class:`MessageInfo`: ``with
        sub.peek_info() as (view, info):``."""
        return self._peek(timeout, True)

    def _release_peek(self, p: Peeked) -> None:
        calls = self._calls
        calls.append(get_ident())
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            give_back(p.view, "the peeked message")
            p._done = True
            if self._held is p:
                self._held = None
            r = self._release_fn(h)
            if r < 0:
                raise error_for(r, self.topic)
        finally:
            calls.pop()
            if self._closing and not calls:
                self._finish_close()

    def release(self) -> None:
        """Consumes the message held by peek() and releases its view
        (shmbus_release). BufferError, and nothing released, while a slice
        or NumPy array of the view is alive; :class:`StaleError` when its
        bytes were overwritten while held (overwrite policy) or a queue
        consumer took it over; :class:`EvictedError`;
        :class:`InvalidArgumentError` when no message is held."""
        held = self._held
        if held is not None:
            self._release_peek(held)
            return
        h = self._enter()
        try:
            check(self._release_fn(h), self.topic)
        finally:
            self._leave()

    @property
    def lost(self) -> int:
        """How many messages this subscriber missed: overwritten before it
        read them (overwrite policy), or damaged and skipped
        (shmbus_sub_lost)."""
        h = self._enter()
        try:
            return self._lost(h)
        finally:
            self._leave()

    def fileno(self) -> int:
        """A descriptor that polls readable while messages wait
        (shmbus_sub_fd), for selectors, select.poll or an event loop. When
        it is readable, receive with timeout 0 until it returns None: the
        descriptor stays readable until a receive or peek found the topic
        empty. Owned by the subscriber: do not read or close it. The first
        call starts the library's watcher thread."""
        fd = self._fd
        if fd is not None and not self._closing:
            return fd
        h = self._enter()
        try:
            self._fd = check(self._fd_fn(h), self.topic)
            return self._fd
        finally:
            self._leave()

    def __iter__(self) -> Iterator[bytes]:
        """Receives until the subscriber is closed."""
        while True:
            try:
                msg = self.receive()
            except ClosedError:
                return
            if msg is not None:
                yield msg

    async def areceive(self) -> bytes:
        """The next message, waiting in the running asyncio loop
        (loop.add_reader on fileno()) without blocking it. Raises
        ClosedError when the subscriber is closed meanwhile (close() on the
        loop's thread), and as receive()."""
        while True:
            if self._streak >= _ASYNC_STREAK:
                # Let the loop's other tasks run now and then while
                # messages keep coming: before receiving, so that a task
                # cancelled here loses no message.
                self._streak = 0
                await asyncio.sleep(0)
            msg = self.receive(0)
            if msg is not None:
                self._streak += 1
                return msg
            self._streak = 0
            # receive found the topic empty: the descriptor is now clear
            # until a message is published.
            await self._readable()

    async def areceive_info(self) -> Tuple[bytes, MessageInfo]:
        """As areceive(), with the message's :class:`MessageInfo`."""
        while True:
            got = self.receive_info(0)
            if got is not None:
                return got
            await self._readable()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.areceive()
        except ClosedError:
            raise StopAsyncIteration from None

    def _before_close(self) -> None:
        held = self._held
        if held is not None and exported(held.view):
            raise BufferError(
                "the peeked message is still in use: delete its slices and "
                "arrays before closing the subscriber"
            )

    def _release_memory(self) -> None:
        held = self._held
        if held is not None:
            held.view.release()
            held._done = True
            self._held = None
        self._wake_closed(self._closed_error())

    def __enter__(self) -> "Subscriber":
        return self

    def __repr__(self) -> str:
        return f"<shmbus.Subscriber {self.topic!r}{' closed' if self.closed else ''}>"


class Watch(Handle, _AsyncReadable):
    """The topics whose names match a pattern, as they are created and
    removed (shmbus_watch_open). First every matching topic is told
    (CREATED), then LISTED once, then each creation and removal as it
    happens; a topic created while the watch opens may be told twice.
    OVERFLOW: events were lost; open the watch again.

    Iterating receives events until the watch is closed; ``async for`` in
    an asyncio loop."""

    pattern: str
    """The pattern watched."""

    def __init__(self, h: int, pattern: str) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_watch_close)
        self.pattern = pattern
        self._next = lib.shmbus_watch_next
        self._fd_fn = lib.shmbus_watch_fd
        self._kind = c_int()
        self._name = ctypes.create_string_buffer(TOPIC_MAX + 1)
        self._fd: Optional[int] = None
        self._waiter = None

    def next(self, timeout: Timeout = None) -> Optional[WatchEvent]:
        """The next event, waiting up to ``timeout`` seconds; None when
        none came in time. Raises :class:`ConnectionResetError` (the
        broker went away: open the watch again once it is back),
        :class:`ProtocolError`."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        h = self._enter()
        try:
            args = (h, self._kind, ctypes.addressof(self._name), TOPIC_MAX + 1)
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            r = self._next(*args, step)
            if r == ETIMEDOUT and step != ms:
                r = self._wait_more(self._next, args, ms)
            if r == EAGAIN or r == ETIMEDOUT:
                return None
            check(r, self.pattern)
            kind = self._kind.value
            return WatchEvent(
                WatchKind(kind) if kind in WatchKind._value2member_map_ else kind,  # type: ignore[arg-type]
                self._name.value.decode("utf-8", "surrogateescape"),
            )
        finally:
            self._leave()

    def fileno(self) -> int:
        """A descriptor that polls readable when events arrive
        (shmbus_watch_fd): call next(0) until None before polling it.
        Owned by the watch."""
        fd = self._fd
        if fd is not None and not self._closing:
            return fd
        h = self._enter()
        try:
            self._fd = check(self._fd_fn(h), self.pattern)
            return self._fd
        finally:
            self._leave()

    def __iter__(self) -> Iterator[WatchEvent]:
        """Events until the watch is closed."""
        while True:
            try:
                ev = self.next()
            except ClosedError:
                return
            if ev is not None:
                yield ev

    async def anext(self) -> WatchEvent:
        """The next event, waiting in the running asyncio loop."""
        while True:
            ev = self.next(0)
            if ev is not None:
                return ev
            await self._readable()

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            return await self.anext()
        except ClosedError:
            raise StopAsyncIteration from None

    def _release_memory(self) -> None:
        self._wake_closed(self._closed_error())

    def __enter__(self) -> "Watch":
        return self

    def __repr__(self) -> str:
        return f"<shmbus.Watch {self.pattern!r}{' closed' if self.closed else ''}>"


class Bus(Handle):
    """A connection to the broker (shmbus_connect): makes topics, opens
    them, watches them. Usable from several threads (its requests are
    serialised). Closing it leaves the publishers, subscribers and watches
    opened through it working; each keeps what it needs."""

    def __init__(self, h: int) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_close)
        self._lib = lib

    def create(
        self,
        topic: str,
        *,
        capacity: Union[int, str, None] = None,
        max_message: Union[int, str, None] = None,
        mode: Union[str, int, None] = None,
        overflow: Union[str, int, None] = None,
        persistent: bool = False,
        metadata: bool = False,
    ) -> None:
        """Creates ``topic`` explicitly (shmbus_topic_create): it stays
        until delete(), even unused. Settings left None take the broker's
        defaults.

        capacity: ring bytes, a power of two from 4KiB to 1GiB (an int or
        "1MiB"); max_message: the largest message, up to capacity / 4;
        mode: "broadcast" or "queue"; overflow: "block", "overwrite" or
        "reject"; persistent: kept in a file in the broker's data_dir;
        metadata: each message carries its publish time and publisher id
        (MessageInfo), in 16 bytes counted in max_message.

        Raises :class:`FileExistsError`, :class:`InvalidArgumentError`
        (a bad name or setting), :class:`PermissionError`,
        :class:`LimitError` (over the broker's limits), or a connection
        error."""
        cfg = _lib.TopicConfig()
        if capacity is not None:
            cfg.capacity = parse_size(capacity)
        if max_message is not None:
            size = parse_size(max_message)
            if size >= 1 << 32:
                raise error_for(errno.EINVAL, topic, f"max_message too large: {size}")
            cfg.max_message = size
        if mode is not None:
            cfg.mode = _choice(Mode, mode, "mode")
        if overflow is not None:
            cfg.overflow = _choice(Overflow, overflow, "overflow")
        cfg.persistent = 1 if persistent else 0
        cfg.metadata = 1 if metadata else 0
        name = encode_name(topic, "topic")
        h = self._enter()
        try:
            check(self._lib.shmbus_topic_create(h, name, byref(cfg)), topic)
        finally:
            self._leave()

    def delete(self, topic: str) -> None:
        """Removes the name ``topic`` (shmbus_topic_delete); its current
        publishers and subscribers keep working until they close. Raises
        :class:`FileNotFoundError`, :class:`PermissionError`,
        :class:`InvalidArgumentError`, or a connection error."""
        name = encode_name(topic, "topic")
        h = self._enter()
        try:
            check(self._lib.shmbus_topic_delete(h, name), topic)
        finally:
            self._leave()

    def _open(self, fn: Any, name: str, what: str, *mid: Any) -> int:
        raw = encode_name(name, what)
        out = c_void_p()
        h = self._enter()
        try:
            check(fn(h, raw, *mid, out), name)
        finally:
            self._leave()
        return out.value or 0

    def publisher(self, topic: str) -> Publisher:
        """Opens ``topic`` to publish (shmbus_pub_open). A missing topic is
        created with the broker's defaults (unless the broker is set not
        to: FileNotFoundError) and removed when nobody uses it any more.
        Raises :class:`PermissionError`, :class:`InvalidArgumentError`,
        :class:`LimitError`, or a connection error."""
        return Publisher(self._open(self._lib.shmbus_pub_open, topic, "topic"), topic)

    def subscriber(self, topic: str, start: Union[str, int] = "latest") -> Subscriber:
        """Opens ``topic`` to receive (shmbus_sub_open), starting with the
        next message published ("latest") or the oldest one the ring still
        holds ("earliest"; a queue ignores it). A missing topic is created
        as for publisher(). Raises :class:`LimitError` (no free subscriber
        slot), and as publisher()."""
        where = _choice(Start, start, "start")
        return Subscriber(
            self._open(self._lib.shmbus_sub_open, topic, "topic", where), topic
        )

    def watch(self, pattern: str) -> Watch:
        """Watches the topics matching ``pattern`` (shmbus_watch_open):
        levels split on "/", "*" (or "+") matches one level, a last ">"
        (or "#") one or more; a plain name matches itself. Only topics
        this process may subscribe to are told. Raises
        :class:`InvalidArgumentError` (a bad pattern), and connection
        errors."""
        return Watch(self._open(self._lib.shmbus_watch_open, pattern, "pattern"), pattern)

    def server(self, service: str) -> "Server":
        """Serves ``service`` (shmbus_serve_open): requests sent to it may
        now come to the returned :class:`Server`. Raises
        :class:`PermissionError` (the service's serve rule),
        :class:`FileNotFoundError` (no such service and the broker creates
        none on demand), :class:`InvalidArgumentError` (a bad name), or a
        connection error."""
        from .reqrep import Server

        return Server(self._open(self._lib.shmbus_serve_open, service, "service"), service)

    def requester(self, service: str) -> "Requester":
        """Opens a :class:`Requester` of ``service``
        (shmbus_requester_open). Raises :class:`PermissionError` (the
        service's request rule), and as server()."""
        from .reqrep import Requester

        return Requester(
            self._open(self._lib.shmbus_requester_open, service, "service"), service
        )

    def request(self, service: str, data: BytesLike, timeout: Timeout = None) -> bytes:
        """One request without keeping a requester, as shmbus_request()
        does: opens a requester, calls, closes it. A program that asks a
        service again keeps a :meth:`requester`, which saves the broker
        making its channels each time. Raises as requester() and
        :meth:`Requester.call`."""
        with self.requester(service) as rq:
            return rq.call(data, timeout)

    def __enter__(self) -> "Bus":
        return self

    def __repr__(self) -> str:
        return f"<shmbus.Bus{' closed' if self.closed else ''}>"


def connect(socket: Union[str, "os.PathLike[str]", None] = None, name: Optional[str] = None) -> Bus:
    """Connects to the broker (shmbus_connect) at ``socket``, or when None
    at $SHMBUS_SOCKET, else $XDG_RUNTIME_DIR/shmbus/shmbusd.sock, else
    /tmp/shmbus-$UID/shmbusd.sock, introducing itself as ``name`` (1 to 64
    printable ASCII characters; None: the program's name).

    Raises :class:`FileNotFoundError` or :class:`ConnectionRefusedError`
    (no broker), :class:`PermissionError` (the socket's permissions, or a
    broker of a user this process does not trust), :class:`ProtocolError`,
    :class:`ConnectionResetError`, :class:`LimitError` (the broker takes
    no more clients), :class:`InvalidArgumentError` (a path over 107 bytes,
    a bad name), :class:`LibraryNotFoundError`."""
    lib = _lib.load()
    path = None if socket is None else encode_name(socket, "socket path")
    who = None if name is None else encode_name(name, "client name")
    out = c_void_p()
    check(lib.shmbus_connect(path, who, out), path)
    return Bus(out.value or 0)

__all__ = [
    "Bus",
    "Publisher",
    "Subscriber",
    "Watch",
    "Claim",
    "Peeked",
    "MessageInfo",
    "WatchEvent",
    "WatchKind",
    "Mode",
    "Overflow",
    "Start",
    "connect",
    "parse_size",
    "TOPIC_MAX",
    "MSG_METADATA",
]
