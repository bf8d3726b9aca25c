"""shmbus.Mapping: files, private and named shared memory, views as
memoryviews, flush, the lock as a context manager, and their errors."""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys
import threading
import uuid

import pytest

import shmbus
from conftest import BOUND, python_env, wait_until

PAGE = mmap.PAGESIZE


@pytest.fixture
def shm_name():
    name = f"py-shmbus-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        shmbus.Mapping.unlink(name)
    except FileNotFoundError:
        pass


def test_a_file_mapping_writes_through_to_the_file(tmp_path):
    path = tmp_path / "data.bin"
    with shmbus.Mapping.file(path, 3 * PAGE, "write", create=True) as m:
        assert m.access == "write" and m.size == 3 * PAGE
        assert os.path.getsize(path) == 3 * PAGE
        assert m.fileno() >= 0
        with m.view(PAGE + 10, 5) as v:
            assert len(v) == 5 and v.offset == PAGE + 10
            v[:] = b"hello"
            v.flush()
            v.flush(1, 2)
            assert bytes(v) == b"hello"
        with m.view() as whole:
            assert whole.memory[PAGE + 10 : PAGE + 15] == b"hello"
    with open(path, "rb") as f:
        f.seek(PAGE + 10)
        assert f.read(5) == b"hello"
    # Read-only: the view is a read-only memoryview; a write view refused.
    with shmbus.Mapping.file(path) as ro:
        assert ro.access == "read"
        with ro.view(PAGE + 10, 5) as v:
            assert v.memory.readonly and bytes(v) == b"hello"
            with pytest.raises(TypeError):
                v[0] = 0
        with pytest.raises(PermissionError) as ei:
            ro.view(0, 10, "write")
        assert ei.value.errno == errno.EACCES
        # Copy-on-write: writable, private.
        with ro.view(PAGE + 10, 5, "copy") as cow:
            cow[:] = b"HELLO"
            with ro.view(PAGE + 10, 5) as v:
                assert bytes(v) == b"hello"


def test_file_errors(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError) as ei:
        shmbus.Mapping.file(missing)
    assert ei.value.filename == str(missing)
    existing = tmp_path / "existing"
    existing.write_bytes(b"x" * 10)
    with pytest.raises(FileExistsError):
        shmbus.Mapping.file(existing, 10, "write", create=True, exclusive=True)
    with pytest.raises(IsADirectoryError):
        shmbus.Mapping.file(tmp_path)
    with pytest.raises(shmbus.Error) as ei:
        shmbus.Mapping.file("/dev/null")
    assert ei.value.errno == errno.ENODEV
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Mapping.file(existing, 0, "read", create=True)  # CREATE needs WRITE
    with pytest.raises(ValueError):
        shmbus.Mapping.file(existing, 0, "execute")
    with pytest.raises(shmbus.InvalidArgumentError) as ei:
        shmbus.Mapping.file(tmp_path / "empty", 0, "write", create=True)
    assert not (tmp_path / "empty").exists()  # made, then removed again


def test_memory_is_zeroed_and_shared_between_views():
    with shmbus.Mapping.memory(2 * PAGE) as m:
        assert m.access == "write" and m.size == 2 * PAGE
        a = m.view(0, 2 * PAGE)
        b = m.view(PAGE, PAGE)
        assert bytes(a[:16]) == bytes(16)
        a[PAGE : PAGE + 4] = b"same"
        assert bytes(b[:4]) == b"same"
        b.unmap()
        assert b.closed
    assert a.closed  # unmapped with the mapping
    with pytest.raises(ValueError):
        a[0]
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Mapping.memory(0)
    with pytest.raises(shmbus.Error) as ei:
        shmbus.Mapping.memory(1 << 62)  # more than RAM and swap
    assert ei.value.errno == errno.ENOMEM


def test_views_out_of_range_and_at_an_address():
    with shmbus.Mapping.memory(PAGE) as m:
        with pytest.raises(shmbus.InvalidArgumentError) as ei:
            m.view(PAGE - 1, 2)
        assert ei.value.errno == errno.ERANGE
        with pytest.raises(ValueError):
            m.view(0, 1, hint="backwards")
        with m.view(0, 8, hint="sequential") as s, m.view(0, 8, hint="random") as r:
            s[:] = b"12345678"
            assert bytes(r) == b"12345678"
        with m.view(0, 4) as v:
            with pytest.raises(shmbus.InvalidArgumentError):
                v.flush(4, 1)
        # A free address: reserve a region, give it back, map there.
        probe = m.view(0, PAGE)
        where = probe.address
        probe.unmap()
        with m.view(0, PAGE, address=where) as at:
            assert at.address == where
            with pytest.raises(FileExistsError):
                m.view(0, PAGE, address=where)  # in use


def test_named_shared_memory_between_processes(shm_name):
    with shmbus.Mapping.shared(shm_name, PAGE, "write", create=True) as m:
        with m.view(0, 16) as v:
            v[:5] = b"hello"
        child = (
            "import shmbus, sys\n"
            "m = shmbus.Mapping.open(sys.argv[1], 'write')\n"
            "v = m.view(0, 16)\n"
            "assert bytes(v[:5]) == b'hello'\n"
            "v[5:10] = b'world'\n"
            "v.unmap(); m.close()\n"
        )
        subprocess.run(
            [sys.executable, "-c", child, shm_name], env=python_env(), check=True, timeout=BOUND * 3
        )
        with m.view(0, 10) as v:
            assert bytes(v) == b"helloworld"
    with shmbus.Mapping.open("/" + shm_name) as again:  # a leading / is the same object
        assert again.size == PAGE
        with pytest.raises(PermissionError):
            again.view(0, 1, "write")
    with pytest.raises(FileExistsError):
        shmbus.Mapping.shared(shm_name, PAGE, "write", create=True, exclusive=True)
    shmbus.Mapping.unlink(shm_name)
    with pytest.raises(FileNotFoundError):
        shmbus.Mapping.open(shm_name)
    with pytest.raises(FileNotFoundError):
        shmbus.Mapping.unlink(shm_name)
    for bad in ("", "a/b", "..", "x" * 251):
        with pytest.raises(shmbus.InvalidArgumentError):
            shmbus.Mapping.open(bad)


def test_the_lock_is_a_context_manager_between_processes(shm_name):
    with shmbus.Mapping.shared(shm_name, PAGE, "write", create=True) as m:
        with m.lock(timeout=BOUND) as locked:
            assert locked is m
            with pytest.raises(shmbus.Error) as ei:
                m.lock(timeout=0)  # this thread holds it already
            assert ei.value.errno == errno.EDEADLK
            # Another process cannot have it meanwhile.
            child = (
                "import shmbus, sys\n"
                "m = shmbus.Mapping.open(sys.argv[1])\n"
                "try:\n"
                "    m.lock(timeout=0.05)\n"
                "    print('got it')\n"
                "except shmbus.TimeoutError:\n"
                "    print('timed out')\n"
            )
            out = subprocess.run(
                [sys.executable, "-c", child, shm_name],
                env=python_env(),
                capture_output=True,
                text=True,
                timeout=BOUND * 3,
            )
            assert out.stdout.strip() == "timed out", out.stderr
        with pytest.raises(PermissionError) as ei:
            m.unlock()  # not held any more
        assert ei.value.errno == errno.EPERM
        # A holder that dies releases it.
        holder = subprocess.Popen(
            [sys.executable, "-c", "import shmbus, sys, time\n"
             "m = shmbus.Mapping.open(sys.argv[1]); m.lock()\n"
             "print('locked', flush=True); time.sleep(60)\n", shm_name],
            env=python_env(),
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout.readline().strip() == b"locked"
            with pytest.raises(shmbus.TimeoutError):
                m.lock(timeout=0)
            holder.kill()
            holder.wait(BOUND)
            with m.lock(timeout=BOUND):
                pass
        finally:
            holder.kill()
            holder.wait(BOUND)


def test_the_lock_waits_for_another_thread(shm_name):
    with shmbus.Mapping.shared(shm_name, PAGE, "write", create=True) as m:
        order = []
        m.lock()
        t = threading.Thread(target=lambda: (m.lock(timeout=BOUND), order.append("other"), m.unlock()))
        t.start()
        wait_until(lambda: m._calls, "the other thread to wait")
        order.append("first")
        m.unlock()
        t.join(BOUND)
        assert order == ["first", "other"]


def test_view_memory_is_given_back_only_when_unused():
    with shmbus.Mapping.memory(PAGE) as m:
        v = m.view(0, 64)
        part = v.memory[8:16]
        with pytest.raises(BufferError):
            v.unmap()
        with pytest.raises(BufferError):
            m.close()  # would unmap what part points at
        part[:] = b"stillok!"
        del part
        v.unmap()
        with pytest.raises(ValueError):
            v.memory[0]


def test_numpy_over_a_view():
    np = pytest.importorskip("numpy")
    with shmbus.Mapping.memory(PAGE) as m:
        with m.view(0, 64) as v:
            a = np.frombuffer(v.memory, dtype="<u4")
            a2 = np.frombuffer(v.memory, dtype="<u4")
            assert a.ctypes.data == v.address
            v.memory[:4] = (7).to_bytes(4, "little")
            assert a[0] == 7 == a2[0]
            with pytest.raises(BufferError):
                v.unmap()
            del a, a2
