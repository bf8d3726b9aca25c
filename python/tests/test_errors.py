"""The error mapping: every code the headers document becomes the class the
binding documents, with the library's errno and message; and the errors of
connecting, made for real."""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest

import shmbus
from conftest import BOUND, Broker, python_env

# Every error code include/shmbus/shmbus.h and map.h document, with the
# class it must raise and the builtins that must catch it.
DOCUMENTED = [
    ("EINVAL", shmbus.InvalidArgumentError, (ValueError,)),
    ("ENAMETOOLONG", shmbus.InvalidArgumentError, (ValueError,)),
    ("ERANGE", shmbus.InvalidArgumentError, (ValueError,)),
    ("EMSGSIZE", shmbus.MessageSizeError, (ValueError,)),
    ("ETIMEDOUT", shmbus.TimeoutError, (builtins.TimeoutError,)),
    ("EAGAIN", shmbus.WouldBlockError, (builtins.TimeoutError, BlockingIOError)),
    ("EACCES", shmbus.PermissionError, (builtins.PermissionError,)),
    ("EPERM", shmbus.PermissionError, (builtins.PermissionError,)),
    ("ENOENT", shmbus.FileNotFoundError, (builtins.FileNotFoundError,)),
    ("EEXIST", shmbus.FileExistsError, (builtins.FileExistsError,)),
    ("EISDIR", shmbus.IsADirectoryError, (builtins.IsADirectoryError,)),
    ("ECONNREFUSED", shmbus.ConnectionRefusedError, (builtins.ConnectionRefusedError,)),
    ("ECONNRESET", shmbus.ConnectionResetError, (builtins.ConnectionResetError,)),
    ("ESTALE", shmbus.StaleError, ()),
    ("EIDRM", shmbus.EvictedError, ()),
    ("EBUSY", shmbus.BusyError, ()),
    ("EBADMSG", shmbus.CorruptError, ()),
    ("EPROTO", shmbus.ProtocolError, ()),
    ("ENOSPC", shmbus.LimitError, ()),
    ("EUSERS", shmbus.LimitError, ()),
    ("EMFILE", shmbus.LimitError, ()),
    ("EHOSTUNREACH", shmbus.NoServerError, (ConnectionError,)),
    ("ECONNABORTED", shmbus.ServerGoneError, (ConnectionAbortedError,)),
    ("EPIPE", shmbus.RequesterGoneError, (BrokenPipeError,)),
    ("ENOMEM", shmbus.Error, ()),
    ("EROFS", shmbus.Error, ()),
    ("ENOTSUP", shmbus.Error, ()),
    ("ENODEV", shmbus.Error, ()),
    ("EFBIG", shmbus.Error, ()),
    ("EDEADLK", shmbus.Error, ()),
    ("EIO", shmbus.Error, ()),
]


@pytest.mark.parametrize("name,cls,builtins_", DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_each_documented_code_maps_to_its_class(name, cls, builtins_):
    code = getattr(errno, name)
    lib = shmbus._lib.load()
    for given in (-code, code):
        e = shmbus.error_for(given, "some/topic")
        assert type(e) is cls
        assert isinstance(e, shmbus.Error) and isinstance(e, OSError)
        for b in builtins_:
            assert isinstance(e, b)
        assert e.errno == code
        assert e.strerror == lib.shmbus_strerror(-code).decode()
        assert e.filename == "some/topic"
        assert str(e) == f"[Errno {code}] {e.strerror}: 'some/topic'"
    # The generic classes that must not catch it.
    if cls is shmbus.Error:
        assert not isinstance(shmbus.error_for(-code), ValueError)


def test_an_undocumented_code_is_a_plain_error():
    e = shmbus.error_for(-errno.EXDEV)
    assert type(e) is shmbus.Error and e.errno == errno.EXDEV
    assert e.filename is None


def test_strerror_is_the_librarys():
    assert shmbus.strerror(-errno.ETIMEDOUT) == "timed out"
    assert shmbus.strerror(errno.ETIMEDOUT) == "timed out"


def test_the_builtin_named_classes_stay_out_of_star_imports():
    ns: dict = {}
    exec("from shmbus import *", ns)
    assert len(shmbus.BUILTIN_NAMED) == 7
    for cls in shmbus.BUILTIN_NAMED:
        name = cls.__name__
        assert name not in ns
        assert getattr(shmbus, name) is cls and issubclass(cls, getattr(builtins, name))
    assert ns["StaleError"] is shmbus.StaleError
    for name in shmbus.__all__:
        assert hasattr(shmbus, name), name


# ---- connecting ----------------------------------------------------------


def test_connect_without_a_broker_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as ei:
        shmbus.connect(str(tmp_path / "none.sock"))
    assert isinstance(ei.value, shmbus.FileNotFoundError)
    assert ei.value.errno == errno.ENOENT
    assert ei.value.filename == str(tmp_path / "none.sock")


def test_connect_to_a_socket_nobody_listens_on_is_refused(tmp_path):
    path = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # bound, never listening: what a dead broker leaves
    try:
        with pytest.raises(ConnectionRefusedError) as ei:
            shmbus.connect(path)
        assert ei.value.errno == errno.ECONNREFUSED
    finally:
        s.close()


def test_connect_with_a_path_too_long_is_a_value_error(tmp_path):
    with pytest.raises(ValueError) as ei:
        shmbus.connect("/tmp/" + "x" * 200 + ".sock")
    assert ei.value.errno == errno.ENAMETOOLONG


@pytest.mark.parametrize("name", ["", "tab\there", "x" * 65, "nul\0"])
def test_connect_with_a_bad_client_name_is_a_value_error(broker, name):
    with pytest.raises(shmbus.InvalidArgumentError) as ei:
        shmbus.connect(broker.socket, name)
    assert ei.value.errno == errno.EINVAL


def test_connect_finds_the_socket_in_the_environment(broker, monkeypatch, topic):
    monkeypatch.setenv("SHMBUS_SOCKET", broker.socket)
    with shmbus.connect(name="from-env") as bus:
        bus.create(topic)
        bus.delete(topic)


def test_a_broker_that_breaks_the_protocol_is_a_protocol_error(tmp_path):
    """A server of our own uid (so trusted) that answers hello with a
    frame that is not the protocol's."""
    path = str(tmp_path / "fake.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def answer() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"\x00\x00\x00\x05nope!")

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        with pytest.raises(shmbus.ProtocolError) as ei:
            shmbus.connect(path)
        assert ei.value.errno == errno.EPROTO
    finally:
        t.join(BOUND)
        srv.close()


def test_requests_after_the_broker_died_are_connection_reset(start_broker, topic):
    b = start_broker()
    bus = b.connect()
    try:
        bus.create(topic)
        assert b.kill() == 0
        with pytest.raises(ConnectionResetError) as ei:
            bus.create(topic + "-2")
        assert isinstance(ei.value, shmbus.ConnectionResetError)
        assert ei.value.errno == errno.ECONNRESET
    finally:
        bus.close()


# ---- as another user: EACCES, EPERM ---------------------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to act as another user",
)
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

CHILD = """
import errno, sys, shmbus
try:
    bus = shmbus.connect(sys.argv[1])
    if len(sys.argv) > 2:
        bus.publisher(sys.argv[2])
    print("ok")
except shmbus.Error as e:
    print(type(e).__name__, errno.errorcode[e.errno], isinstance(e, PermissionError))
"""


def run_as_nobody(*args: str) -> str:
    r = subprocess.run(
        AS_NOBODY + [sys.executable, "-c", CHILD, *args],
        env=python_env(),
        capture_output=True,
        timeout=BOUND * 3,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@needs_root
def test_a_socket_the_user_may_not_open_is_permission_denied(start_broker, private_tmp):
    b = start_broker(directory=private_tmp)  # socket mode 0600, root's
    assert run_as_nobody(b.socket) == "PermissionError EACCES True"


@needs_root
def test_the_access_rules_are_permission_denied(start_broker, private_tmp, topic):
    b = start_broker(
        {"topic_defaults": {"access": {"publish": {}}}},  # root only
        directory=private_tmp,
        args=["--socket-mode", "0666"],
    )
    assert run_as_nobody(b.socket) == "ok"
    assert run_as_nobody(b.socket, topic) == "PermissionError EACCES True"


@needs_root
def test_a_broker_of_an_untrusted_user_is_refused(start_broker, private_tmp, monkeypatch):
    os.chown(private_tmp, NOBODY, NOBODY)
    os.chmod(private_tmp, 0o700)
    b = Broker(private_tmp, prefix=AS_NOBODY)
    try:
        monkeypatch.delenv("SHMBUS_BROKER_USER", raising=False)
        with pytest.raises(PermissionError) as ei:
            shmbus.connect(b.socket)
        assert ei.value.errno == errno.EPERM
        monkeypatch.setenv("SHMBUS_BROKER_USER", str(NOBODY))
        shmbus.connect(b.socket).close()  # trusted once named
    finally:
        b.kill()
