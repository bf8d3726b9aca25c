"""Memory-mapped files: the Win32 file-mapping model on Linux
(include/shmbus/map.h, docs/mapping.md), usable without a broker.

A :class:`Mapping` is the mapping object: a file on disk
(:meth:`Mapping.file`), private memory (:meth:`Mapping.memory`) or named
shared memory (:meth:`Mapping.shared`, :meth:`Mapping.open`). Its bytes are
reached through views (:meth:`Mapping.view`), windows at any offset and
length whose :attr:`View.memory` is a memoryview of the mapped bytes
(writable for "write" and "copy" views). The mapping's lock is a
cross-process mutex that the kernel releases when its holder dies:
``with mapping.lock(timeout=1.0): ...``.
"""

from __future__ import annotations

import os
from ctypes import c_void_p
from enum import IntFlag
from typing import Any, List, Optional, Union

from . import _lib
from ._common import (
    ETIMEDOUT,
    SLICE_MS,
    Handle,
    Timeout,
    check,
    encode_name,
    exported,
    timeout_ms,
)

PathLike = Union[str, bytes, "os.PathLike[Any]"]

NAME_MAX = 250
"""The longest shared-memory name, a leading '/' not counted
(SHMBUS_MAP_NAME_MAX)."""


class Access(IntFlag):
    """Access of a mapping or view (SHMBUS_ACCESS_*); the methods also take
    the names "read", "write" and "copy"."""

    READ = 0x0001
    """Read-only: writes through a view fault (PAGE_READONLY)."""
    WRITE = 0x0002
    """Read and write (PAGE_READWRITE)."""
    COPY = 0x0004
    """Private copy-on-write: writes stay in the view (FILE_MAP_COPY)."""


_CREATE = 0x0100
_EXCL = 0x0200
_TRUNCATE = 0x0400
_HINTS = {None: 0, "sequential": 0x1000, "random": 0x2000}


def _access(value: Union[str, int, Access]) -> int:
    if isinstance(value, str):
        try:
            return int(Access[value.upper()])
        except KeyError:
            pass
    elif isinstance(value, int) and value in (1, 2, 4):
        return int(value)
    raise ValueError(f"access must be 'read', 'write' or 'copy', not {value!r}")


def _flags(access: Union[str, int], create: bool, exclusive: bool, truncate: bool) -> int:
    return (
        _access(access)
        | (_CREATE if create else 0)
        | (_EXCL if exclusive else 0)
        | (_TRUNCATE if truncate else 0)
    )


class View(Handle):
    """A window of a :class:`Mapping` (MapViewOfFile). :attr:`memory` is
    its bytes as a memoryview (NumPy: ``numpy.frombuffer(view.memory)``);
    indexing, slicing and ``len()`` of the view go to it.

    unmap() (or the end of a with block) releases :attr:`memory` (using it
    afterwards raises ValueError) and unmaps the window; BufferError, with
    nothing unmapped, while a slice or NumPy array of it is alive. Closing
    the mapping unmaps its views too."""

    mapping: "Mapping"
    """The mapping this is a view of."""
    offset: int
    """Where in the mapping the view starts."""
    access: str
    """"read", "write" or "copy"."""
    memory: memoryview
    """The view's bytes (format 'B')."""
    address: int
    """The address of the view's first byte."""

    def __init__(self, mapping: "Mapping", h: int, offset: int, access: str) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_view_unmap)
        self._lib = lib
        self.mapping = mapping
        self.offset = offset
        self.access = access
        self.address = lib.shmbus_view_data(h) or 0
        size = lib.shmbus_view_size(h)
        self.memory = _lib.memory_view(self.address, size, access != "read")

    def flush(self, offset: int = 0, length: int = 0) -> None:
        """Writes ``length`` bytes from ``offset`` (relative to the view;
        length 0: to the end, so flush() is the whole view) back to the
        file and waits for it (FlushViewOfFile). Harmless on shared and
        private memory. Raises :class:`InvalidArgumentError` (ERANGE:
        outside the view), :class:`Error` (EIO)."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length cannot be negative")
        self.mapping._enter()
        try:
            h = self._enter()
            try:
                check(self._lib.shmbus_view_flush(h, offset, length))
            finally:
                self._leave()
        finally:
            self.mapping._leave()

    def unmap(self) -> None:
        """Unmaps the view (UnmapViewOfFile); the same as close()."""
        self.close()

    def close(self) -> None:
        """Unmaps the view; see the class."""
        if self._h is None:
            return
        super().close()
        views = self.mapping._views
        if self in views:
            views.remove(self)

    def _before_close(self) -> None:
        if exported(self.memory):
            raise BufferError(
                "the view's memory is still in use (a slice or NumPy array "
                "of it is alive): delete those first"
            )

    def _release_memory(self) -> None:
        self.memory.release()

    def __len__(self) -> int:
        return len(self.memory)

    def __getitem__(self, key: Any) -> Any:
        return self.memory[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.memory[key] = value

    def __bytes__(self) -> bytes:
        return self.memory.tobytes()

    def __enter__(self) -> "View":
        return self

    def __repr__(self) -> str:
        if self.closed:
            return "<shmbus.View unmapped>"
        return (
            f"<shmbus.View {len(self.memory)} bytes at offset {self.offset}, "
            f"{self.access}>"
        )


class _Locked:
    """The held lock of a mapping, as a context manager that unlocks."""

    def __init__(self, mapping: "Mapping") -> None:
        self._mapping = mapping

    def __enter__(self) -> "Mapping":
        return self._mapping

    def __exit__(self, *exc: object) -> None:
        self._mapping.unlock()


class Mapping(Handle):
    """A mapping object (CreateFileMapping / OpenFileMapping); make one
    with :meth:`file`, :meth:`memory`, :meth:`shared` or :meth:`open`.
    A mapping and its views may be used from several threads.

    close() unmaps every view still mapped (their memory is released) and
    releases the lock if held; BufferError, with nothing closed, while a
    view's memory is still used by a slice or NumPy array."""

    access: str
    """What the mapping was opened for: "read", "write" or "copy"."""

    def __init__(self, h: int, access: str, what: str) -> None:
        lib = _lib.load()
        super().__init__(h, lib.shmbus_map_close)
        self._lib = lib
        self.access = access
        self.name = what
        self._views: List[View] = []

    @classmethod
    def file(
        cls,
        path: PathLike,
        size: int = 0,
        access: Union[str, int] = "read",
        *,
        create: bool = False,
        exclusive: bool = False,
        truncate: bool = False,
    ) -> "Mapping":
        """Maps the disk file ``path`` (shmbus_map_file), a persisted
        mapping: writes through a view reach the file and every process
        mapping it. ``size`` larger than the file grows it (sparse; needs
        "write"), smaller never shrinks it, 0 means the file's size.
        ``create`` makes a missing file (mode 0600; needs "write"),
        ``exclusive`` with it fails if the file exists, ``truncate``
        empties it first (needs "write").

        Raises :class:`FileNotFoundError`, :class:`FileExistsError`,
        :class:`PermissionError`, :class:`IsADirectoryError`,
        :class:`InvalidArgumentError` (bad flags, an empty result),
        :class:`Error` (ENODEV: not a regular file; EFBIG; ENOMEM)."""
        raw = encode_name(path, "path")
        flags = _flags(access, create, exclusive, truncate)
        return cls._make(
            lambda lib, out: lib.shmbus_map_file(raw, size, flags, out),
            Access(flags & 7).name.lower(),  # type: ignore[union-attr]
            os.fsdecode(raw),
        )

    @classmethod
    def memory(cls, size: int) -> "Mapping":
        """Private memory of ``size`` bytes (> 0), zero-filled and
        committed up front (shmbus_map_memory): an anonymous memfd that a
        forked child shares. Always writable. Raises
        :class:`InvalidArgumentError`, :class:`Error` (ENOMEM: more than
        RAM and swap), :class:`LimitError` (ENOSPC)."""
        return cls._make(lambda lib, out: lib.shmbus_map_memory(size, out), "write", "memory")

    @classmethod
    def shared(
        cls,
        name: str,
        size: int = 0,
        access: Union[str, int] = "read",
        *,
        create: bool = False,
        exclusive: bool = False,
        truncate: bool = False,
    ) -> "Mapping":
        """Named, non-persisted shared memory (shmbus_map_shared, POSIX
        shm): ``name`` as in Win32 ("MyFileMappingObject"; a leading '/'
        names the same object). Flags as for :meth:`file`. A new object
        is ``size`` bytes, committed up front; a smaller one grows; a
        larger one is left as it is.

        Raises :class:`InvalidArgumentError` (a bad name; size 0 for a new
        object), :class:`FileNotFoundError`, :class:`FileExistsError`,
        :class:`PermissionError`, :class:`LimitError` (more than /dev/shm
        holds)."""
        raw = encode_name(name, "name")
        flags = _flags(access, create, exclusive, truncate)
        return cls._make(
            lambda lib, out: lib.shmbus_map_shared(raw, size, flags, out),
            Access(flags & 7).name.lower(),  # type: ignore[union-attr]
            name,
        )

    @classmethod
    def open(cls, name: str, access: Union[str, int] = "read") -> "Mapping":
        """Opens existing named shared memory (OpenFileMapping,
        shmbus_map_open). A mapping opened for "read" or "copy" gives
        read-only or copy-on-write views only. Raises
        :class:`FileNotFoundError`, :class:`PermissionError`,
        :class:`InvalidArgumentError`."""
        raw = encode_name(name, "name")
        acc = _access(access)
        return cls._make(
            lambda lib, out: lib.shmbus_map_open(raw, acc, out),
            Access(acc).name.lower(),  # type: ignore[union-attr]
            name,
        )

    @staticmethod
    def unlink(name: str) -> None:
        """Removes the name of shared memory (shmbus_map_unlink); open
        mappings stay valid. Raises :class:`FileNotFoundError`,
        :class:`PermissionError`, :class:`InvalidArgumentError`."""
        raw = encode_name(name, "name")
        check(_lib.load().shmbus_map_unlink(raw), name)

    @classmethod
    def _make(cls, fn: Any, access: str, what: str) -> "Mapping":
        lib = _lib.load()
        out = c_void_p()
        check(fn(lib, out), what)
        return cls(out.value or 0, access, what)

    @property
    def size(self) -> int:
        """The object's current size in bytes (GetFileSize; follows
        growth by anyone)."""
        h = self._enter()
        try:
            return check(self._lib.shmbus_map_size(h), self.name)
        finally:
            self._leave()

    def fileno(self) -> int:
        """The descriptor behind the mapping (file, shm or memfd), owned by
        the mapping: do not close it."""
        h = self._enter()
        try:
            return check(self._lib.shmbus_map_fd(h), self.name)
        finally:
            self._leave()

    def lock(self, timeout: Timeout = None) -> _Locked:
        """Takes the mapping's cross-process lock (AccessData,
        shmbus_map_lock), waiting up to ``timeout`` seconds (None: as long
        as it takes; 0: try once). Exclusive between all mappings of the
        object in every process and between threads; released by the
        kernel when the holder dies. Returns a context manager that
        unlocks: ``with mapping.lock(1.0):``.

        Raises :class:`TimeoutError` (not free in time, timeout 0 too),
        :class:`Error` (EDEADLK: this thread holds it already through this
        mapping)."""
        ms = -1 if timeout is None else timeout_ms(timeout)
        h = self._enter()
        try:
            fn = self._lib.shmbus_map_lock
            step = ms if 0 <= ms <= SLICE_MS else SLICE_MS
            r = fn(h, step)
            if r == ETIMEDOUT and step != ms:
                r = self._wait_more(fn, (h,), ms)
            check(r, self.name)
        finally:
            self._leave()
        return _Locked(self)

    def unlock(self) -> None:
        """Releases the lock (UnaccessData). Raises
        :class:`PermissionError` (EPERM) when this thread does not hold
        it."""
        h = self._enter()
        try:
            check(self._lib.shmbus_map_unlock(h), self.name)
        finally:
            self._leave()

    def view(
        self,
        offset: int = 0,
        length: int = 0,
        access: Union[str, int, None] = None,
        *,
        hint: Optional[str] = None,
        address: Optional[int] = None,
    ) -> View:
        """Maps ``length`` bytes from ``offset`` (any offset; length 0: to
        the end) as a :class:`View` (MapViewOfFile, shmbus_view_map).
        ``access`` defaults to the mapping's; "write" needs a mapping
        opened for it, "copy" works on any. ``hint``: "sequential" or
        "random" (madvise). ``address``: map the view's first byte there
        (MapViewOfFileEx, shmbus_view_map_at; congruent to offset modulo
        the page size; never replaces a mapping).

        Raises :class:`InvalidArgumentError` (ERANGE: outside the object,
        or empty; bad flags), :class:`PermissionError` (a write view of a
        mapping opened for read or copy), :class:`FileExistsError` (the
        address is in use), :class:`Error` (ENOMEM)."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length cannot be negative")
        acc = self.access if access is None else Access(_access(access)).name.lower()  # type: ignore[union-attr]
        if hint not in _HINTS:
            raise ValueError(f"hint must be None, 'sequential' or 'random', not {hint!r}")
        flags = _access(acc) | _HINTS[hint]
        out = c_void_p()
        h = self._enter()
        try:
            if address is None:
                r = self._lib.shmbus_view_map(h, offset, length, flags, out)
            else:
                r = self._lib.shmbus_view_map_at(h, offset, length, flags, address, out)
            check(r, self.name)
            v = View(self, out.value or 0, offset, acc)
            self._views.append(v)
            return v
        finally:
            self._leave()

    def _before_close(self) -> None:
        for v in self._views:
            v._before_close()

    def _release_memory(self) -> None:
        for v in self._views:
            v._closing = True
            v.memory.release()
            v._h = None  # unmapped by the library with the mapping
        self._views.clear()

    def __enter__(self) -> "Mapping":
        return self

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<shmbus.Mapping {self.name!r} {self.access}{state}>"


__all__ = ["Mapping", "View", "Access", "NAME_MAX"]
