"""The exceptions of the shmbus binding.

Every failure of a library call is raised as a :class:`shmbus.Error`, an
:class:`OSError` whose ``errno`` is the library's (positive) error code and
whose ``strerror`` is the library's own text for it (``shmbus_strerror()``);
``filename``, when set, is the topic, pattern, path or name the call was
about. Where Python has a builtin exception for the condition, the class
derives from it as well, so both ``except shmbus.Error`` and, say,
``except TimeoutError`` catch it:

=============  ===========================  =================================
errno          class                        also a
=============  ===========================  =================================
ETIMEDOUT      :class:`TimeoutError`        builtin ``TimeoutError``
EAGAIN         :class:`WouldBlockError`     ``TimeoutError``, ``BlockingIOError``
EACCES, EPERM  :class:`PermissionError`     builtin ``PermissionError``
ENOENT         :class:`FileNotFoundError`   builtin ``FileNotFoundError``
EEXIST         :class:`FileExistsError`     builtin ``FileExistsError``
EISDIR         :class:`IsADirectoryError`   builtin ``IsADirectoryError``
ECONNREFUSED   :class:`ConnectionRefusedError`  builtin one
ECONNRESET     :class:`ConnectionResetError`    builtin one
EINVAL, ENAMETOOLONG, ERANGE  :class:`InvalidArgumentError`  ``ValueError``
EMSGSIZE       :class:`MessageSizeError`    ``ValueError``
ESTALE         :class:`StaleError`
EIDRM          :class:`EvictedError`
EBUSY          :class:`BusyError`
EBADMSG        :class:`CorruptError`
EPROTO         :class:`ProtocolError`
EHOSTUNREACH   :class:`NoServerError`       ``ConnectionError``
ECONNABORTED   :class:`ServerGoneError`     builtin ``ConnectionAbortedError``
EPIPE          :class:`RequesterGoneError`  builtin ``BrokenPipeError``
ENOSPC, EUSERS, EMFILE  :class:`LimitError`
(closed object)  :class:`ClosedError`       ``ValueError``
anything else  :class:`Error`
=============  ===========================  =================================

The classes named like builtins (``TimeoutError``, ``PermissionError``, ...)
are left out of ``from shmbus import *`` so that they never shadow the
builtins of the importing module.
"""

from __future__ import annotations

import builtins
import errno as _errno
from typing import Dict, Optional, Type, Union

__all__ = [
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
    "error_for",
]


class Error(OSError):
    """Base of every error of the shmbus library.

    ``errno`` is the positive error code (``errno.ETIMEDOUT``, ...),
    ``strerror`` the library's text for it, ``filename`` the topic, pattern,
    path or name the failed call was about (or None).
    """


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001
    """Nothing happened within the timeout (ETIMEDOUT)."""


class WouldBlockError(TimeoutError, builtins.BlockingIOError):
    """The call would have had to wait, and was told not to (EAGAIN): the
    ring was full (timeout 0, or the reject policy) or had nothing to
    receive (timeout 0). A :class:`TimeoutError` with a timeout of zero."""


class PermissionError(Error, builtins.PermissionError):  # noqa: A001
    """Refused by the broker's access rules, the socket's or a file's
    permissions (EACCES), or an untrusted broker, or a lock not held
    (EPERM)."""


class FileNotFoundError(Error, builtins.FileNotFoundError):  # noqa: A001
    """No such topic, mapping, file or broker socket (ENOENT)."""


class FileExistsError(Error, builtins.FileExistsError):  # noqa: A001
    """The topic or mapping exists already (EEXIST)."""


class IsADirectoryError(Error, builtins.IsADirectoryError):  # noqa: A001
    """A path given as a file is a directory (EISDIR)."""


class ConnectionRefusedError(Error, builtins.ConnectionRefusedError):  # noqa: A001
    """No broker listens on the socket (ECONNREFUSED)."""


class ConnectionResetError(Error, builtins.ConnectionResetError):  # noqa: A001
    """The connection to the broker was lost (ECONNRESET); it reconnects in
    the background, and publishing and receiving go on meanwhile."""


class InvalidArgumentError(Error, builtins.ValueError):
    """A bad argument: a bad topic or mapping name, setting, flag, timeout,
    a name too long (EINVAL, ENAMETOOLONG), or a window outside a mapping or
    view (ERANGE)."""


class MessageSizeError(Error, builtins.ValueError):
    """A message larger than the topic's max_message, or than the buffer it
    should be received into (EMSGSIZE; the message then stays)."""


class StaleError(Error):
    """A peeked message was overwritten while it was held (overwrite
    policy) or taken over by another queue consumer (ESTALE): discard what
    was read from it."""


class EvictedError(Error):
    """The subscriber was evicted by the broker (EIDRM): close it and
    subscribe again."""


class BusyError(Error):
    """Busy (EBUSY): a peek is held on this subscriber, or a claim on this
    publisher."""


class CorruptError(Error):
    """The topic's shared memory is corrupted (EBADMSG)."""


class ProtocolError(Error):
    """The broker answered something that breaks the protocol (EPROTO)."""


class LimitError(Error):
    """Over one of the broker's or the system's limits: topics, ring bytes
    or shared memory (ENOSPC), subscribers or clients (EUSERS), descriptors
    (EMFILE)."""


class NoServerError(Error, builtins.ConnectionError):
    """The service has no server (EHOSTUNREACH): no request was sent. Told
    at once, as NATS's "no responders" is, never after a timeout."""


class ServerGoneError(Error, builtins.ConnectionAbortedError):
    """The server holding the request went away before it answered
    (ECONNABORTED): it closed, or its process died. Told as soon as the
    broker sees it, not at the timeout; the request may be sent again."""


class RequesterGoneError(Error, builtins.BrokenPipeError):
    """The requester of a request went away before its reply (EPIPE): the
    reply was dropped. A server goes on with its other requests."""


class ClosedError(Error, builtins.ValueError):
    """The object was closed (errno EBADF). A ValueError, as for I/O on a
    closed file."""


class LibraryNotFoundError(FileNotFoundError):
    """libshmbus.so could not be found or loaded; the message says where it
    was looked for and how to get it."""


_CLASSES: Dict[int, Type[Error]] = {
    _errno.ETIMEDOUT: TimeoutError,
    _errno.EAGAIN: WouldBlockError,
    _errno.EACCES: PermissionError,
    _errno.EPERM: PermissionError,
    _errno.ENOENT: FileNotFoundError,
    _errno.EEXIST: FileExistsError,
    _errno.EISDIR: IsADirectoryError,
    _errno.ECONNREFUSED: ConnectionRefusedError,
    _errno.ECONNRESET: ConnectionResetError,
    _errno.EINVAL: InvalidArgumentError,
    _errno.ENAMETOOLONG: InvalidArgumentError,
    _errno.ERANGE: InvalidArgumentError,
    _errno.EMSGSIZE: MessageSizeError,
    _errno.ESTALE: StaleError,
    _errno.EIDRM: EvictedError,
    _errno.EBUSY: BusyError,
    _errno.EBADMSG: CorruptError,
    _errno.EPROTO: ProtocolError,
    _errno.ENOSPC: LimitError,
    _errno.EUSERS: LimitError,
    _errno.EMFILE: LimitError,
    _errno.EHOSTUNREACH: NoServerError,
    _errno.ECONNABORTED: ServerGoneError,
    _errno.EPIPE: RequesterGoneError,
    _errno.EBADF: ClosedError,
}


def error_class(code: int) -> Type[Error]:
    """The exception class for error code ``code`` (negative as the library
    returns it, or positive)."""
    return _CLASSES.get(abs(code), Error)


def error_for(
    code: int, what: Union[str, bytes, None] = None, message: Optional[str] = None
) -> Error:
    """The exception for the library's error code ``code`` (negative, as
    returned, or positive), about ``what`` (a topic, path or name), with
    the library's message unless ``message`` is given."""
    code = abs(code)
    if message is None:
        from . import _lib

        message = _lib.strerror(code)
    if isinstance(what, bytes):
        what = what.decode("utf-8", "backslashreplace")
    if what is None:
        return error_class(code)(code, message)
    return error_class(code)(code, message, what)
