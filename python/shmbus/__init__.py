"""shmbus: the shared-memory message bus from Python.

A binding of libshmbus (include/shmbus/shmbus.h, include/shmbus/map.h)
through ctypes: nothing to compile, no dependency outside the standard
library. Publishing and receiving go through the topic's shared memory with
no system call, as from C; the GIL is released around every call into the
library, so a thread that waits lets the others run.

::

    import shmbus

    with shmbus.connect() as bus:                 # the socket: as in C
        bus.create("sensors/imu", capacity="1MiB", mode="broadcast",
                   overflow="overwrite")          # optional
        with bus.subscriber("sensors/imu") as sub:
            with bus.publisher("sensors/imu") as pub:
                pub.publish(b"hello", timeout=1.0)    # any bytes-like object
                pub.publish_batch([b"a", b"b"])
                with pub.claim(64) as buf:            # zero-copy: writable memoryview
                    buf[:5] = b"hello"                # committed on exit, dropped on error
            msg = sub.receive(timeout=1.0)        # bytes, or None on timeout
            with sub.peek(timeout=1.0) as view:   # read-only memoryview, released on exit
                arr = numpy.frombuffer(view, dtype="<u1")   # no copy
                del arr                           # nothing may keep the view past the block
            for msg in sub:                       # until the subscriber is closed
                ...
            sub.lost                              # messages missed (overwrite policy)
            sub.fileno()                          # for selectors / asyncio

Request and reply (:mod:`shmbus.reqrep`)::

    with bus.server("math/add") as srv:           # serving, in one process
        data, ref = srv.receive(timeout=1.0)      # or: for data, ref in srv
        srv.reply(ref, b"3")
    with bus.requester("math/add") as rq:         # asking, in another
        rq.call(b"1 2", timeout=1.0)              # the reply's bytes
        await rq.acall(b"1 2")                    # in an asyncio loop

In an asyncio loop: ``await sub.areceive()`` and ``async for msg in sub``
wait with ``loop.add_reader(sub.fileno())``, never blocking the loop.

Timeouts are seconds: None waits as long as it takes, 0 does not wait.
Errors are exceptions, all :class:`shmbus.Error` (an OSError with the
library's errno and message), and also the builtin ones where Python has
them: TimeoutError, PermissionError, FileNotFoundError, ValueError for bad
names and sizes (see :mod:`shmbus.errors`).

The memory-mapped-file layer the bus is built on: :class:`shmbus.Mapping`.

The library is looked for in ``$SHMBUS_LIBRARY``, next to an installed copy
of this package, in the source tree's ``build/plain/`` (for
``PYTHONPATH=python``), then by the dynamic loader; :func:`library_path`
says which was loaded.
"""

from __future__ import annotations

from typing import Optional

from . import _lib
from .bus import (
    MSG_METADATA,
    TOPIC_MAX,
    Bus,
    Claim,
    MessageInfo,
    Mode,
    Overflow,
    Peeked,
    Publisher,
    Start,
    Subscriber,
    Watch,
    WatchEvent,
    WatchKind,
    connect,
    parse_size,
)
from .errors import (
    BusyError,
    ClosedError,
    ConnectionRefusedError,
    ConnectionResetError,
    CorruptError,
    Error,
    EvictedError,
    FileExistsError,
    FileNotFoundError,
    InvalidArgumentError,
    IsADirectoryError,
    LibraryNotFoundError,
    LimitError,
    MessageSizeError,
    NoServerError,
    PermissionError,
    ProtocolError,
    RequesterGoneError,
    ServerGoneError,
    StaleError,
    TimeoutError,
    WouldBlockError,
    error_for,
)
from .mapping import NAME_MAX, Access, Mapping, View
from .reqrep import SERVICE_MAX, Requester, RequestRef, Server

__version__ = "0.1.0"


def library_path() -> str:
    """The file libshmbus was loaded from, loading it if needed (raises
    :class:`LibraryNotFoundError` when it cannot be found)."""
    _lib.load()
    path: Optional[str] = _lib.path()
    assert path is not None
    return path


def strerror(code: int) -> str:
    """The library's text for an error code (shmbus_strerror), negative as
    the C functions return it or positive as in Error.errno."""
    return _lib.strerror(code)


# The classes named like builtins (TimeoutError, ...) are left out, so that
# `from shmbus import *` never shadows the builtins: use shmbus.TimeoutError
# or the builtin, which catches it too.
__all__ = [
    "connect",
    "Bus",
    "Publisher",
    "Subscriber",
    "Watch",
    "Server",
    "Requester",
    "RequestRef",
    "Claim",
    "Peeked",
    "MessageInfo",
    "WatchEvent",
    "WatchKind",
    "Mode",
    "Overflow",
    "Start",
    "Mapping",
    "View",
    "Access",
    "parse_size",
    "library_path",
    "strerror",
    "error_for",
    "TOPIC_MAX",
    "SERVICE_MAX",
    "NAME_MAX",
    "MSG_METADATA",
    "Error",
    "WouldBlockError",
    "InvalidArgumentError",
    "MessageSizeError",
    "StaleError",
    "EvictedError",
    "BusyError",
    "CorruptError",
    "ProtocolError",
    "LimitError",
    "NoServerError",
    "ServerGoneError",
    "RequesterGoneError",
    "ClosedError",
    "LibraryNotFoundError",
]

# The classes named like builtins, left out of __all__ (above) but part of
# the package: shmbus.TimeoutError, shmbus.PermissionError, ...
BUILTIN_NAMED = (
    TimeoutError,
    PermissionError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    ConnectionRefusedError,
    ConnectionResetError,
)
