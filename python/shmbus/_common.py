"""What the bus and the mapping layer share: timeouts, waits in slices,
handles that can be closed from another thread, and the rule that memory
handed out as a memoryview is only given back once no view of it is left.
"""

from __future__ import annotations

import errno
import gc
import math
import os
import sys
import threading
import time
import warnings
from typing import Any, Callable, List, Optional, Union

from .errors import ClosedError, error_for

Timeout = Optional[float]
"""Seconds to wait: None waits as long as it takes, 0 does not wait."""

INT_MAX = 2**31 - 1

# A wait longer than this is made of waits of this length, so that the
# waiting thread comes back to Python in between: the main thread then runs
# signal handlers (Ctrl-C raises KeyboardInterrupt within it), and close()
# from another thread is noticed.
SLICE_MS = 200

ETIMEDOUT = -errno.ETIMEDOUT
EAGAIN = -errno.EAGAIN

get_ident = threading.get_ident


def timeout_ms(timeout: Timeout) -> int:
    """Seconds (None: forever) to the library's milliseconds (-1: forever),
    rounded up so that a short timeout still waits."""
    if timeout is None:
        return -1
    if timeout != timeout or timeout < 0:  # NaN too
        raise ValueError(f"timeout must be None or >= 0 seconds, not {timeout!r}")
    if timeout == 0:
        return 0
    if math.isinf(timeout):
        return -1
    return min(math.ceil(timeout * 1000), INT_MAX)


def first_slice(ms: int) -> int:
    """The timeout of the first call of a wait of ``ms``."""
    return ms if 0 <= ms <= SLICE_MS else SLICE_MS


def encode_name(name: Union[str, bytes, "os.PathLike[Any]"], what: str) -> bytes:
    """A topic, pattern, path or name as the C string the library takes;
    an embedded NUL (which C would cut the name at) is refused."""
    if isinstance(name, str):
        raw = name.encode("utf-8", "surrogateescape")
    elif isinstance(name, bytes):
        raw = name
    else:
        raw = os.fsencode(name)
    if b"\0" in raw:
        raise error_for(errno.EINVAL, raw, f"{what} contains a NUL character")
    return raw


def check(r: int, what: Union[str, bytes, None] = None) -> int:
    """``r`` when it is not an error, else raises the matching
    :class:`shmbus.Error`."""
    if r < 0:
        raise error_for(r, what)
    return r


def exported(mv: memoryview) -> bool:
    """True while any view or export of ``mv``'s memory besides ``mv``
    itself is alive: a slice or cast of it, a memoryview of it, a NumPy
    array made from it. Those share ``mv``'s managed buffer, and each holds
    a reference to that buffer; ``mv.release()`` alone would only see the
    exports of ``mv`` itself and would let the others live on, pointing at
    memory given back. (CPython: the managed buffer is what a memoryview's
    garbage-collector traversal reports.)"""
    refs = gc.get_referents(mv)
    if not refs:
        return False  # released already
    # One reference from mv, one from the list refs, one as the argument.
    return sys.getrefcount(refs[0]) > 3


def give_back(mv: memoryview, what: str) -> None:
    """Releases ``mv`` if nothing else uses its memory; else raises
    BufferError and leaves it as it is."""
    if exported(mv):
        raise BufferError(
            f"{what} is still in use (a slice, cast or NumPy array of it "
            "is alive): delete those first"
        )
    mv.release()  # BufferError when exported directly


class Handle:
    """An object of the library, closed once by ``close_fn``.

    Every call on it is counted in flight (a list, whose append and pop are
    atomic in CPython) so that close() from another thread waits for calls
    under way instead of freeing what they use; waits are made of short
    slices that look at ``_closing`` in between, so that wait is short. A
    close() from a call in flight on the same thread (a signal handler) is
    done when that call returns.
    """

    _close_fn: Callable[[int], int]
    _h: Optional[int]

    def __init__(self, h: int, close_fn: Callable[[int], int]) -> None:
        self._h = h
        self._close_fn = close_fn
        self._calls: List[int] = []
        self._closing = False
        self._close_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._h is None or self._closing

    def _closed_error(self) -> ClosedError:
        return ClosedError(errno.EBADF, f"{type(self).__name__} is closed")

    def _enter(self) -> int:
        """Counts a call in flight and returns the handle; raises
        ClosedError once closed."""
        self._calls.append(get_ident())
        h = self._h
        if h is None or self._closing:
            self._calls.pop()
            raise self._closed_error()
        return h

    def _leave(self) -> None:
        self._calls.pop()
        if self._closing and not self._calls:
            self._finish_close()

    def _wait_more(self, fn: Callable[..., int], args: tuple, ms: int) -> int:
        """Goes on with a wait whose first slice timed out: calls
        ``fn(*args, slice_ms)`` until it returns something else than
        -ETIMEDOUT or the rest of ``ms`` (-1: forever) has passed. Raises
        ClosedError if the object is being closed."""
        deadline = None if ms < 0 else time.monotonic() + (ms - SLICE_MS) / 1000
        while True:
            if self._closing:
                raise self._closed_error()
            step = SLICE_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return ETIMEDOUT
                step = min(SLICE_MS, max(1, math.ceil(left * 1000)))
            r = fn(*args, step)
            if r != ETIMEDOUT:
                return r

    def _before_close(self) -> None:
        """Raises (BufferError) when the object cannot be closed now."""

    def _release_memory(self) -> None:
        """Releases the memoryviews handed out, before the handle goes."""

    def close(self) -> None:
        """Closes the object; later calls raise :class:`shmbus.ClosedError`.
        Calls under way in other threads finish first (a wait within a
        fifth of a second: they give up with ClosedError). Closing twice
        does nothing. Raises BufferError, and closes nothing, while memory
        it handed out (a peeked message, a claimed buffer, a view) is still
        used by a slice or a NumPy array."""
        if self._h is None or self._closing:
            return
        self._before_close()
        self._closing = True
        if self._calls:
            if get_ident() in self._calls:
                return  # closed when the call under way on this thread returns
            pause = 0.0005
            while self._calls:
                time.sleep(pause)
                pause = min(pause * 2, 0.01)
        self._finish_close()

    def _finish_close(self) -> None:
        with self._close_lock:
            h = self._h
            if h is None:
                return
            self._release_memory()
            self._h = None
            self._close_fn(h)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if self._h is None:
                return
            try:
                self._before_close()
            except BufferError:
                # Its memory is still exported: leaking the object is safe,
                # unmapping the memory under the export would not be.
                warnings.warn(
                    f"{type(self).__name__} left open: its memory is still "
                    "in use",
                    ResourceWarning,
                    source=self,
                )
                return
            self._closing = True
            self._finish_close()
        except Exception:  # interpreter shutdown: modules half gone
            pass
