"""Request and reply: a :class:`Server` serves a named service, a
:class:`Requester` asks it and waits for the answer (include/shmbus/shmbus.h,
``man 3 shmbus_request``). Requests and replies go through shared memory
that the broker sets up for each pair of requester and server; several
servers of one service share its requests, and each reply reaches only the
requester that asked.

::

    with bus.server("math/add") as srv:           # in one process
        for data, ref in srv:                     # until closed
            srv.reply(ref, b"answer to " + data)

    with bus.requester("math/add") as rq:         # in another
        answer = rq.call(b"1 2", timeout=1.0)     # bytes
    answer = bus.request("math/add", b"1 2")      # one request, no requester kept

Errors of a request, each its own class: :class:`NoServerError` (the
service has no server: at once), :class:`ServerGoneError` (the server
holding it went away before it answered: as soon as the broker sees it,
not at the timeout), :class:`TimeoutError` (no answer in time).
"""

from __future__ import annotations

import ctypes
import errno
from ctypes import byref, c_uint64
from typing import Any, Iterator, NamedTuple, Optional, Tuple

from . import _lib
from ._common import EAGAIN, ETIMEDOUT, SLICE_MS, Handle, Timeout, check, timeout_ms
from .bus import BytesLike, _AsyncReadable
from .errors import ClosedError, error_for

SERVICE_MAX = 200
"""The longest service name (SHMBUS_SERVICE_MAX)."""

class RequestRef(NamedTuple):
    """Which request a reply answers (struct shmbus_reqref): given by
    :meth:`Server.receive` with the request, passed to :meth:`Server.reply`.
    Plain numbers: keep or copy it freely, reply later or from another
    thread (one thread at a time on the Server)."""

    channel: int
    id: int


class _Bytes:
    """The address and length of a bytes-like object for a call, held until
    release() (PyObject_GetBuffer; bytes need no hold)."""

    __slots__ = ("pb", "ptr", "len")

    def __init__(self, data: BytesLike) -> None:
        if type(data) is bytes:
            self.pb: Optional[_lib.PyBuffer] = None
            self.ptr: Any = data
            self.len = len(data)
        else:
            self.pb = _lib.PyBuffer()
            _lib.get_buffer(data, byref(self.pb), _lib.PyBUF_SIMPLE)
            self.ptr, self.len = self.pb.buf, self.pb.len

    def release(self) -> None:
        if self.pb is not None:
            _lib.release_buffer(byref(self.pb))
            self.pb = None


class Server(Handle, _AsyncReadable):
    """A service served (shmbus_serve_open). Requests of every requester
    come to :meth:`receive` in turn; answer each with :meth:`reply`. One
    thread at a time may use a Server; close() may come from another.
    Closing it (or the process dying) tells the broker, whose requesters
    then get :class:`ServerGoneError` for the requests it held unanswered.

    Iterating (``for data, ref in srv``) receives until the server is
    closed; ``async for`` does the same in an asyncio loop."""

    service: str
    """The service's name."""
    max_request: int
    """The largest request a requester may send (shmbus_serve_max_request)."""
    max_reply: int
    """The largest reply this server may send (shmbus_serve_max_reply)."""

    def __init__(self, h: int, service: str) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_serve_close)
        self.service = service
        self.max_request = lib.shmbus_serve_max_request(h)
        self.max_reply = lib.shmbus_serve_max_reply(h)
        self._recv = lib.shmbus_serve_receive
        self._reply = lib.shmbus_reply
        self._dropped = lib.shmbus_serve_dropped
        self._fd_fn = lib.shmbus_serve_fd
        self._buf = ctypes.create_string_buffer(max(self.max_request, 1))
        self._addr = ctypes.addressof(self._buf)
        self._mv = memoryview(self._buf)
        self._ref = _lib.ReqRef()
        self._fd: Optional[int] = None
        self._waiter = None

    def receive(self, timeout: Timeout = None) -> Optional[Tuple[bytes, RequestRef]]:
        """The next request and its :class:`RequestRef`, waiting up to
        ``timeout`` seconds (None: as long as it takes; 0: not at all);
        None when none came in time. Raises ClosedError (closed, also by
        another thread during the wait), :class:`ConnectionResetError` or
        another connection error (the broker could not be asked for a new
        requester's channel)."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        h = self._enter()
        try:
            args = (h, self._addr, len(self._buf), self._ref)
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            n = self._recv(*args, step)
            if n == ETIMEDOUT and step != ms:
                n = self._wait_more(self._recv, args, ms)
            if n == EAGAIN or n == ETIMEDOUT:
                return None
            check(n, self.service)
            return self._mv[:n].tobytes(), RequestRef(self._ref.channel, self._ref.id)
        finally:
            self._leave()

    def reply(self, ref: RequestRef, data: BytesLike) -> None:
        """Answers the request ``ref`` with a copy of ``data`` (any
        contiguous bytes-like object). Never waits. Raises
        :class:`MessageSizeError` (over max_reply: nothing sent),
        :class:`RequesterGoneError` (the requester went away: the reply is
        dropped), :class:`WouldBlockError` (the requester's reply channel
        is full because it does not read: dropped),
        :class:`InvalidArgumentError` (a ref this server never received).
        Answering twice sends two replies; the requester drops the
        second."""
        raw = _lib.ReqRef(ref[0], ref[1])
        buf = _Bytes(data)
        try:
            h = self._enter()
            try:
                r = self._reply(h, raw, buf.ptr, buf.len)
            finally:
                self._leave()
        finally:
            buf.release()
        check(r, self.service)

    @property
    def dropped(self) -> int:
        """Requests and channels dropped because a requester broke the
        layout rules, and replies dropped because a requester's channel
        was full or gone (shmbus_serve_dropped)."""
        h = self._enter()
        try:
            return self._dropped(h)
        finally:
            self._leave()

    def fileno(self) -> int:
        """A descriptor that polls readable when requests may be waiting
        (shmbus_serve_fd): then receive(0) until it returns None. Owned by
        the server: do not read or close it."""
        fd = self._fd
        if fd is not None and not self._closing:
            return fd
        h = self._enter()
        try:
            self._fd = check(self._fd_fn(h), self.service)
            return self._fd
        finally:
            self._leave()

    def __iter__(self) -> Iterator[Tuple[bytes, RequestRef]]:
        """Receives requests until the server is closed."""
        while True:
            try:
                got = self.receive()
            except ClosedError:
                return
            if got is not None:
                yield got

    async def areceive(self) -> Tuple[bytes, RequestRef]:
        """The next request, waiting in the running asyncio loop
        (loop.add_reader on fileno()) without blocking it. Raises
        ClosedError when the server is closed meanwhile."""
        while True:
            got = self.receive(0)
            if got is not None:
                return got
            await self._readable()

    def __aiter__(self) -> "Server":
        return self

    async def __anext__(self) -> Tuple[bytes, RequestRef]:
        try:
            return await self.areceive()
        except ClosedError:
            raise StopAsyncIteration from None

    def _release_memory(self) -> None:
        self._wake_closed(self._closed_error())

    def __enter__(self) -> "Server":
        return self

    def __repr__(self) -> str:
        return f"<shmbus.Server {self.service!r}{' closed' if self.closed else ''}>"


class Requester(Handle, _AsyncReadable):
    """A requester of a service (shmbus_requester_open): asks its servers
    and takes their answers. One thread at a time may use a Requester
    (each thread that asks concurrently opens its own); close() may come
    from another. A service with no server yet is fine: requests then raise
    :class:`NoServerError` until one serves it."""

    service: str
    """The service's name."""
    max_request: int
    """The largest request it may send (shmbus_requester_max_request)."""
    max_reply: int
    """The largest reply a server may send back."""

    def __init__(self, h: int, service: str) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_requester_close)
        self.service = service
        self.max_request = lib.shmbus_requester_max_request(h)
        self.max_reply = lib.shmbus_requester_max_reply(h)
        self._call = lib.shmbus_call
        self._send = lib.shmbus_request_send
        self._take_fn = lib.shmbus_request_take
        self._cancel = lib.shmbus_request_cancel
        self._dropped = lib.shmbus_requester_dropped
        self._fd_fn = lib.shmbus_requester_fd
        self._buf = ctypes.create_string_buffer(max(self.max_reply, 1))
        self._addr = ctypes.addressof(self._buf)
        self._mv = memoryview(self._buf)
        self._ticket = c_uint64()
        self._fd: Optional[int] = None
        self._waiter = None

    def call(self, data: BytesLike, timeout: Timeout = None) -> bytes:
        """Sends ``data`` (any contiguous bytes-like object) to a server of
        the service and returns its reply, waiting up to ``timeout``
        seconds (None: as long as it takes).

        Raises :class:`NoServerError` (no server: at once),
        :class:`ServerGoneError` (the server went away before it answered),
        :class:`TimeoutError` (no answer in time; a late answer is
        dropped), :class:`MessageSizeError` (over max_request: nothing
        sent), :class:`WouldBlockError` (every server's channel is full of
        this requester's requests), :class:`CorruptError` (the server's
        channel broke the layout rules), ClosedError."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        if 0 <= ms <= SLICE_MS:
            # One call: the fast path, no ticket to keep.
            buf = _Bytes(data)
            try:
                h = self._enter()
                try:
                    n = self._call(h, buf.ptr, buf.len, self._addr, len(self._buf), ms)
                finally:
                    self._leave()
            finally:
                buf.release()
            check(n, self.service)
            return self._mv[:n].tobytes()
        # A longer wait is made of slices (Ctrl-C and close() are seen in
        # between), which needs the request to outlive one call: a ticket.
        ticket = self.request(data)
        try:
            got = self.take(ticket, timeout)
        except BaseException:
            self._forget(ticket)
            raise
        if got is None:
            self._forget(ticket)
            raise error_for(errno.ETIMEDOUT, self.service)
        return got

    def _forget(self, ticket: int) -> None:
        """Cancels ``ticket`` if it is still outstanding."""
        h = self._h
        if h is not None and not self._closing:
            self._cancel(h, ticket)

    def request(self, data: BytesLike) -> int:
        """Sends ``data`` and returns at once with its ticket (a nonzero
        int, unique within this requester), for :meth:`take` or
        :meth:`cancel` (shmbus_request_send). Raises as call() does for
        sending."""
        buf = _Bytes(data)
        try:
            h = self._enter()
            try:
                r = self._send(h, buf.ptr, buf.len, self._ticket)
            finally:
                self._leave()
        finally:
            buf.release()
        check(r, self.service)
        return self._ticket.value

    def take(self, ticket: int, timeout: Timeout = None) -> Optional[bytes]:
        """The reply to ``ticket``, waiting up to ``timeout`` seconds; None
        when it did not come in time (the request stays outstanding: take
        it again or cancel it). Raises :class:`ServerGoneError` or
        :class:`CorruptError` (the ticket is then done),
        :class:`FileNotFoundError` (no such ticket: taken or cancelled)."""
        if not ticket:
            raise error_for(errno.EINVAL, self.service, "ticket must be nonzero")
        ms = -1 if timeout is None else timeout_ms(timeout)
        h = self._enter()
        try:
            t = c_uint64(ticket)
            args = (h, byref(t), self._addr, len(self._buf))
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            n = self._take_fn(*args, step)
            if n == ETIMEDOUT and step != ms:
                n = self._wait_more(self._take_fn, args, ms)
            if n == EAGAIN or n == ETIMEDOUT:
                return None
            check(n, self.service)
            return self._mv[:n].tobytes()
        finally:
            self._leave()

    def cancel(self, ticket: int) -> None:
        """Forgets ``ticket``: its reply, if one comes, is dropped. Raises
        :class:`FileNotFoundError` when there is no such ticket."""
        h = self._enter()
        try:
            check(self._cancel(h, ticket), self.service)
        finally:
            self._leave()

    async def acall(self, data: BytesLike) -> bytes:
        """call() in the running asyncio loop: sends the request and waits
        for its reply on fileno() (loop.add_reader) without blocking the
        loop; one acall at a time per Requester. Cancelling the task
        cancels the request. Raises as call() does, and ClosedError when
        the requester is closed meanwhile."""
        ticket = self.request(data)
        try:
            while True:
                got = self.take(ticket, 0)
                if got is not None:
                    return got
                await self._readable()
        except BaseException:
            self._forget(ticket)
            raise

    @property
    def dropped(self) -> int:
        """Replies dropped because their id matched no outstanding request:
        late, cancelled or forged (shmbus_requester_dropped)."""
        h = self._enter()
        try:
            return self._dropped(h)
        finally:
            self._leave()

    def fileno(self) -> int:
        """A descriptor that polls readable when a reply or a server's
        departure may be waiting (shmbus_requester_fd). Owned by the
        requester: do not read or close it."""
        fd = self._fd
        if fd is not None and not self._closing:
            return fd
        h = self._enter()
        try:
            self._fd = check(self._fd_fn(h), self.service)
            return self._fd
        finally:
            self._leave()

    def _release_memory(self) -> None:
        self._wake_closed(self._closed_error())

    def __enter__(self) -> "Requester":
        return self

    def __repr__(self) -> str:
        return f"<shmbus.Requester {self.service!r}{' closed' if self.closed else ''}>"


__all__ = ["Server", "Requester", "RequestRef", "SERVICE_MAX"]
