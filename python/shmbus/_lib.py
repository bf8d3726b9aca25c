"""Finding and loading libshmbus.so, and the ctypes declarations of its
functions (include/shmbus/shmbus.h and include/shmbus/map.h; keep in step).

The library is loaded with ctypes.CDLL, which releases the GIL around every
foreign call: a thread waiting in shmbus_receive() or shmbus_publish() lets
the others run. (ctypes.PyDLL would hold it.)

Where the library is looked for, first match wins:

1. ``$SHMBUS_LIBRARY``, a path to the library file (nothing else is tried);
2. an installed package (``make install``): the library directory recorded
   at installation, relative to the package (so that a staged DESTDIR copy
   finds its staged library), then as an absolute path;
3. a source checkout (``PYTHONPATH=python``): ``build/plain/libshmbus.so``
   next to the ``python/`` directory;
4. ``libshmbus.so.0`` through the dynamic loader's search path
   (``LD_LIBRARY_PATH``, ``ldconfig``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from ctypes import (
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_ssize_t,
    c_uint,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import List, Optional

from .errors import LibraryNotFoundError

SONAME = "libshmbus.so.0"


class TopicConfig(Structure):
    """struct shmbus_topic_config."""

    _fields_ = [
        ("capacity", c_uint64),
        ("max_message", c_uint32),
        ("mode", c_int),
        ("overflow", c_int),
        ("persistent", c_int),
        ("metadata", c_int),
    ]


class MsgInfo(Structure):
    """struct shmbus_msg_info (its ``size`` is set by the caller)."""

    _fields_ = [
        ("size", c_size_t),
        ("seq", c_uint64),
        ("flags", c_uint32),
        ("publish_time_ns", c_int64),
        ("publisher", c_uint64),
    ]


class ReqRef(Structure):
    """struct shmbus_reqref: which request a reply answers."""

    _fields_ = [
        ("channel", c_uint64),
        ("id", c_uint64),
    ]


_PP = POINTER(c_void_p)

# name: (restype, argtypes). Every function of the two public headers.
_PROTOTYPES = {
    # shmbus.h
    "shmbus_connect": (c_int, (c_char_p, c_char_p, _PP)),
    "shmbus_close": (c_int, (c_void_p,)),
    "shmbus_topic_create": (c_int, (c_void_p, c_char_p, POINTER(TopicConfig))),
    "shmbus_topic_delete": (c_int, (c_void_p, c_char_p)),
    "shmbus_pub_open": (c_int, (c_void_p, c_char_p, _PP)),
    "shmbus_publish": (c_int, (c_void_p, c_void_p, c_size_t, c_int)),
    "shmbus_publish_batch": (c_ssize_t, (c_void_p, c_void_p, c_size_t, c_int)),
    "shmbus_claim": (c_int, (c_void_p, c_size_t, _PP, c_int)),
    "shmbus_commit": (c_int, (c_void_p,)),
    "shmbus_abort": (c_int, (c_void_p,)),
    "shmbus_pub_max_message": (c_size_t, (c_void_p,)),
    "shmbus_pub_id": (c_uint64, (c_void_p,)),
    "shmbus_pub_close": (c_int, (c_void_p,)),
    "shmbus_sub_open": (c_int, (c_void_p, c_char_p, c_int, _PP)),
    "shmbus_receive": (c_ssize_t, (c_void_p, c_void_p, c_size_t, c_int)),
    "shmbus_peek": (c_int, (c_void_p, _PP, POINTER(c_size_t), c_int)),
    "shmbus_release": (c_int, (c_void_p,)),
    "shmbus_receive_info": (
        c_ssize_t,
        (c_void_p, c_void_p, c_size_t, POINTER(MsgInfo), c_int),
    ),
    "shmbus_peek_info": (
        c_int,
        (c_void_p, _PP, POINTER(c_size_t), POINTER(MsgInfo), c_int),
    ),
    "shmbus_watch_open": (c_int, (c_void_p, c_char_p, _PP)),
    "shmbus_watch_next": (
        c_int,
        (c_void_p, POINTER(c_int), c_void_p, c_size_t, c_int),
    ),
    "shmbus_watch_fd": (c_int, (c_void_p,)),
    "shmbus_watch_close": (c_int, (c_void_p,)),
    "shmbus_sub_lost": (c_uint64, (c_void_p,)),
    "shmbus_sub_fd": (c_int, (c_void_p,)),
    "shmbus_sub_close": (c_int, (c_void_p,)),
    # shmbus.h: request and reply
    "shmbus_serve_open": (c_int, (c_void_p, c_char_p, _PP)),
    "shmbus_serve_fd": (c_int, (c_void_p,)),
    "shmbus_serve_receive": (
        c_ssize_t,
        (c_void_p, c_void_p, c_size_t, POINTER(ReqRef), c_int),
    ),
    "shmbus_reply": (c_int, (c_void_p, POINTER(ReqRef), c_void_p, c_size_t)),
    "shmbus_reply_claim": (c_int, (c_void_p, POINTER(ReqRef), c_size_t, _PP)),
    "shmbus_reply_commit": (c_int, (c_void_p,)),
    "shmbus_serve_max_request": (c_size_t, (c_void_p,)),
    "shmbus_serve_max_reply": (c_size_t, (c_void_p,)),
    "shmbus_serve_dropped": (c_uint64, (c_void_p,)),
    "shmbus_serve_close": (c_int, (c_void_p,)),
    "shmbus_requester_open": (c_int, (c_void_p, c_char_p, _PP)),
    "shmbus_call": (
        c_ssize_t,
        (c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_int),
    ),
    "shmbus_request": (
        c_ssize_t,
        (c_void_p, c_char_p, c_void_p, c_size_t, c_void_p, c_size_t, c_int),
    ),
    "shmbus_request_send": (
        c_int,
        (c_void_p, c_void_p, c_size_t, POINTER(c_uint64)),
    ),
    "shmbus_request_take": (
        c_ssize_t,
        (c_void_p, POINTER(c_uint64), c_void_p, c_size_t, c_int),
    ),
    "shmbus_request_cancel": (c_int, (c_void_p, c_uint64)),
    "shmbus_requester_fd": (c_int, (c_void_p,)),
    "shmbus_requester_max_request": (c_size_t, (c_void_p,)),
    "shmbus_requester_max_reply": (c_size_t, (c_void_p,)),
    "shmbus_requester_dropped": (c_uint64, (c_void_p,)),
    "shmbus_requester_close": (c_int, (c_void_p,)),
    # map.h
    "shmbus_map_file": (c_int, (c_char_p, c_uint64, c_uint, _PP)),
    "shmbus_map_memory": (c_int, (c_uint64, _PP)),
    "shmbus_map_shared": (c_int, (c_char_p, c_uint64, c_uint, _PP)),
    "shmbus_map_open": (c_int, (c_char_p, c_uint, _PP)),
    "shmbus_map_unlink": (c_int, (c_char_p,)),
    "shmbus_map_close": (c_int, (c_void_p,)),
    "shmbus_map_size": (c_int64, (c_void_p,)),
    "shmbus_map_fd": (c_int, (c_void_p,)),
    "shmbus_map_lock": (c_int, (c_void_p, c_int)),
    "shmbus_map_unlock": (c_int, (c_void_p,)),
    "shmbus_view_map": (c_int, (c_void_p, c_uint64, c_size_t, c_uint, _PP)),
    "shmbus_view_map_at": (
        c_int,
        (c_void_p, c_uint64, c_size_t, c_uint, c_void_p, _PP),
    ),
    "shmbus_view_data": (c_void_p, (c_void_p,)),
    "shmbus_view_size": (c_size_t, (c_void_p,)),
    "shmbus_view_flush": (c_int, (c_void_p, c_size_t, c_size_t)),
    "shmbus_view_unmap": (c_int, (c_void_p,)),
    "shmbus_strerror": (c_char_p, (c_int,)),
}

# Functions an older library may lack; the binding works without them.
_OPTIONAL = {"shmbus_abort"}

_loaded: Optional[ctypes.CDLL] = None
_path: Optional[str] = None
_load_lock = threading.Lock()


def candidates() -> List[str]:
    """Where the library is looked for, in order (see the module's
    docstring)."""
    env = os.environ.get("SHMBUS_LIBRARY")
    if env:
        return [env]
    here = Path(__file__).resolve().parent
    found: List[str] = []
    try:
        from . import _installed  # written by `make install`
    except ImportError:
        pass
    else:
        found.append(os.path.normpath(here / _installed.LIBDIR_RELATIVE / SONAME))
        found.append(os.path.join(_installed.LIBDIR, SONAME))
    checkout = here.parent.parent
    if here.parent.name == "python" and (
        checkout / "include" / "shmbus" / "shmbus.h"
    ).is_file():
        found.append(str(checkout / "build" / "plain" / "libshmbus.so"))
    found.append(SONAME)
    return found


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            if name in _OPTIONAL:
                continue
            raise LibraryNotFoundError(
                errno.ENOENT,
                f"{lib._name} has no {name}(): it is older than this "
                "binding; build or install the library of the same "
                "shmbus version",
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes


def load() -> ctypes.CDLL:
    """The loaded library, loading it on the first call. Raises
    :class:`shmbus.LibraryNotFoundError`, saying where it looked and how to
    get the library, when it cannot be found or loaded."""
    global _loaded, _path
    lib = _loaded
    if lib is not None:
        return lib
    with _load_lock:
        if _loaded is not None:
            return _loaded
        tried = []
        for cand in candidates():
            if os.sep in cand and not os.path.exists(cand):
                tried.append(f"{cand} (missing)")
                continue
            try:
                lib = ctypes.CDLL(cand)
            except OSError as e:
                tried.append(f"{cand} ({e})")
                continue
            _declare(lib)
            _loaded, _path = lib, cand
            return lib
        raise LibraryNotFoundError(
            errno.ENOENT,
            "cannot load libshmbus; tried: "
            + "; ".join(tried)
            + ". Build it in the source tree with `make` (it makes "
            "build/plain/libshmbus.so, which PYTHONPATH=python finds), "
            "install it with `make install` (the package and the library "
            "together), or set SHMBUS_LIBRARY to the library's path",
        )


def path() -> Optional[str]:
    """The file the library was loaded from (None before it is loaded)."""
    return _path


def strerror(code: int) -> str:
    """shmbus_strerror() of ``code``, or os.strerror() when the library
    cannot be loaded."""
    try:
        lib = load()
    except LibraryNotFoundError:
        return os.strerror(abs(code))
    return lib.shmbus_strerror(-abs(code)).decode("utf-8", "replace")


# ---- buffers -------------------------------------------------------------
# The C-API side of Python's buffer protocol: the address of any bytes-like
# object (PyObject_GetBuffer), and memoryviews over memory the library owns
# (PyMemoryView_FromMemory), without a compiler.


class PyBuffer(Structure):
    """Py_buffer, as CPython 3 lays it out."""

    _fields_ = [
        ("buf", c_void_p),
        ("obj", c_void_p),
        ("len", c_ssize_t),
        ("itemsize", c_ssize_t),
        ("readonly", c_int),
        ("ndim", c_int),
        ("format", c_char_p),
        ("shape", c_void_p),
        ("strides", c_void_p),
        ("suboffsets", c_void_p),
        ("internal", c_void_p),
    ]


PyBUF_SIMPLE = 0
PyBUF_WRITABLE = 0x0001
PyBUF_READ = 0x100
PyBUF_WRITE = 0x200

_api = ctypes.pythonapi
get_buffer = _api.PyObject_GetBuffer
get_buffer.restype = c_int
get_buffer.argtypes = (ctypes.py_object, POINTER(PyBuffer), c_int)
release_buffer = _api.PyBuffer_Release
release_buffer.restype = None
release_buffer.argtypes = (POINTER(PyBuffer),)
from_memory = _api.PyMemoryView_FromMemory
from_memory.restype = ctypes.py_object
from_memory.argtypes = (c_void_p, c_ssize_t, c_int)


def memory_view(address: Optional[int], length: int, writable: bool) -> memoryview:
    """A memoryview (format 'B') of ``length`` bytes at ``address``, which
    the caller keeps valid until it has released the view."""
    if length == 0 or not address:
        return memoryview(bytearray() if writable else b"")
    return from_memory(address, length, PyBUF_WRITE if writable else PyBUF_READ)
