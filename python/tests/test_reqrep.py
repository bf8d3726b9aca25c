"""Request and reply from Python: Server and Requester against real
brokers, with servers in threads, in other processes and the command line;
each documented error raised as its class (no server, a server killed
holding the request, a timeout, sizes, an unknown service); asyncio."""

from __future__ import annotations

import asyncio
import errno
import signal
import subprocess
import sys
import threading

import pytest

import shmbus
from conftest import BOUND, SHMBUS, python_env


@pytest.fixture
def service(topic: str) -> str:
    """A service name no other test uses (the topic namespace's rules)."""
    return topic.replace("py/", "svc/", 1)


def serve_in_thread(srv, answer, count):
    """Answers ``count`` requests with ``answer(data)`` in a thread."""

    def run():
        for _ in range(count):
            got = srv.receive(timeout=BOUND)
            assert got is not None
            data, ref = got
            srv.reply(ref, answer(data))

    t = threading.Thread(target=run)
    t.start()
    return t


def test_call_returns_the_reply_byte_for_byte(bus, service):
    payloads = [b"", b"hello", bytes(range(256)) * 40, bytearray(b"ba"), memoryview(b"mv")]
    with bus.server(service) as srv, bus.requester(service) as rq:
        assert srv.max_request == rq.max_request > 0
        assert srv.max_reply == rq.max_reply > 0
        t = serve_in_thread(srv, lambda d: d[::-1] + b"!", len(payloads))
        for p in payloads:
            assert rq.call(p, timeout=BOUND) == bytes(p)[::-1] + b"!"
        t.join(BOUND)
        assert not t.is_alive()
        assert rq.dropped == 0 and srv.dropped == 0


def test_receive_gives_a_ref_of_plain_numbers(bus, service):
    with bus.server(service) as srv, bus.requester(service) as rq:
        assert srv.receive(timeout=0) is None
        ticket = rq.request(b"q")
        data, ref = srv.receive(timeout=BOUND)
        assert data == b"q"
        assert isinstance(ref, shmbus.RequestRef)
        assert isinstance(ref.channel, int) and isinstance(ref.id, int)
        srv.reply(shmbus.RequestRef(*ref), bytearray(b"a"))  # a copy works
        assert rq.take(ticket, timeout=BOUND) == b"a"
        with pytest.raises(FileNotFoundError):
            rq.take(ticket, timeout=0)  # taken already


def test_bus_request_is_one_call(bus, service):
    with bus.server(service) as srv:
        t = serve_in_thread(srv, lambda d: b"re:" + d, 1)
        assert bus.request(service, b"x", timeout=BOUND) == b"re:x"
        t.join(BOUND)


def test_several_tickets_come_back_to_their_own(bus, service):
    with bus.server(service) as srv, bus.requester(service) as rq:
        tickets = {rq.request(b"%d" % i): b"%d" % i for i in range(20)}
        assert len(tickets) == 20 and 0 not in tickets
        for _ in range(20):
            data, ref = srv.receive(timeout=BOUND)
            srv.reply(ref, b"=" + data)
        for ticket, sent in reversed(list(tickets.items())):
            assert rq.take(ticket, timeout=BOUND) == b"=" + sent


def test_no_server_raises_at_once(bus, service):
    with bus.requester(service) as rq:
        with pytest.raises(shmbus.NoServerError) as ei:
            rq.call(b"anyone?", timeout=BOUND * 10)
        assert isinstance(ei.value, ConnectionError)
        assert ei.value.errno == errno.EHOSTUNREACH
        assert ei.value.filename == service
        with pytest.raises(shmbus.NoServerError):
            rq.request(b"anyone?")
    with pytest.raises(shmbus.NoServerError):
        bus.request(service, b"x", timeout=1)


SERVER_THAT_HOLDS = """
import sys, time, shmbus
with shmbus.connect(sys.argv[1], "holder") as bus, bus.server(sys.argv[2]) as srv:
    print("serving", flush=True)
    data, ref = srv.receive(timeout=30)
    print("holding", data.decode(), flush=True)
    time.sleep(60)
"""


def test_a_server_killed_holding_the_request_is_server_gone(broker, bus, service):
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER_THAT_HOLDS, broker.socket, service],
        stdout=subprocess.PIPE,
        env=python_env(),
    )
    try:
        assert child.stdout.readline() == b"serving\n"
        with bus.requester(service) as rq:
            ticket = rq.request(b"q1")
            assert child.stdout.readline() == b"holding q1\n"
            child.send_signal(signal.SIGKILL)
            # Told before the timeout, and not as a timeout.
            with pytest.raises(shmbus.ServerGoneError) as ei:
                rq.take(ticket, timeout=BOUND * 10)
            assert isinstance(ei.value, ConnectionAbortedError)
            assert not isinstance(ei.value, TimeoutError)
            assert ei.value.errno == errno.ECONNABORTED
            with pytest.raises(shmbus.NoServerError):
                rq.call(b"q2", timeout=BOUND)
    finally:
        child.kill()
        child.wait(BOUND)


def test_a_late_reply_is_not_taken_for_the_next(bus, service):
    with bus.server(service) as srv, bus.requester(service) as rq:
        with pytest.raises(shmbus.TimeoutError) as ei:
            rq.call(b"first", timeout=0.05)
        assert isinstance(ei.value, TimeoutError)
        data, late = srv.receive(timeout=BOUND)
        assert data == b"first"
        srv.reply(late, b"answer to first")  # too late: dropped
        t = serve_in_thread(srv, lambda d: b"answer to " + d, 1)
        assert rq.call(b"second", timeout=BOUND) == b"answer to second"
        t.join(BOUND)
        assert rq.dropped == 1


def test_a_long_call_times_out_in_slices(bus, service):
    # Over the binding's slice (200 ms): the request goes by ticket, and the
    # ticket is cancelled when the wait ends.
    with bus.server(service) as srv, bus.requester(service) as rq:
        with pytest.raises(shmbus.TimeoutError):
            rq.call(b"slow", timeout=0.3)
        data, ref = srv.receive(timeout=BOUND)
        srv.reply(ref, b"late")
        t = serve_in_thread(srv, lambda d: d, 1)
        assert rq.call(b"next", timeout=BOUND) == b"next"
        t.join(BOUND)
        assert rq.dropped == 1


def test_sizes(bus, service):
    with bus.server(service) as srv, bus.requester(service) as rq:
        with pytest.raises(shmbus.MessageSizeError) as ei:
            rq.call(b"x" * (rq.max_request + 1), timeout=BOUND)
        assert isinstance(ei.value, ValueError)
        assert srv.receive(timeout=0) is None  # nothing was sent
        ticket = rq.request(b"x" * rq.max_request)  # the largest is fine
        data, ref = srv.receive(timeout=BOUND)
        assert len(data) == rq.max_request
        with pytest.raises(shmbus.MessageSizeError):
            srv.reply(ref, b"y" * (srv.max_reply + 1))
        srv.reply(ref, b"y" * srv.max_reply)
        assert rq.take(ticket, timeout=BOUND) == b"y" * rq.max_reply


def test_an_unknown_service_without_auto_create(start_broker, service):
    b = start_broker({"auto_create": False})
    with b.connect() as bus:
        with pytest.raises(shmbus.FileNotFoundError):
            bus.requester(service)
        with pytest.raises(shmbus.FileNotFoundError):
            bus.server(service)


@pytest.mark.parametrize("name", ["", "a//b", "/a", "a" * (shmbus.SERVICE_MAX + 1)])
def test_bad_service_names_are_value_errors(bus, name):
    with pytest.raises(ValueError):
        bus.requester(name)
    with pytest.raises(ValueError):
        bus.server(name)


def test_closed_objects_raise(bus, service):
    srv = bus.server(service)
    rq = bus.requester(service)
    srv.close()
    rq.close()
    with pytest.raises(shmbus.ClosedError):
        srv.receive(0)
    with pytest.raises(shmbus.ClosedError):
        rq.call(b"x", timeout=1)
    assert "closed" in repr(srv) and "closed" in repr(rq)


def test_asyncio_servers_and_requesters_in_one_loop(bus, service):
    n_req, n_each = 4, 200

    async def serve(srv):
        async for data, ref in srv:
            srv.reply(ref, b"<" + data + b">")

    async def ask(rq, k):
        for i in range(n_each):
            msg = b"%d-%d" % (k, i)
            assert await rq.acall(msg) == b"<" + msg + b">"

    async def main():
        srv = bus.server(service)
        rqs = [bus.requester(service) for _ in range(n_req)]
        server_task = asyncio.create_task(serve(srv))
        await asyncio.wait_for(
            asyncio.gather(*(ask(rq, k) for k, rq in enumerate(rqs))), BOUND * 3
        )
        srv.close()  # ends `async for` on the loop's thread
        await asyncio.wait_for(server_task, BOUND)
        for rq in rqs:
            rq.close()

    asyncio.run(main())


def test_the_command_line_and_python_answer_each_other(broker, bus, service):
    reply = subprocess.Popen(
        [str(SHMBUS), "--socket", broker.socket, "reply", "-v", service, "--exec", "tr", "a-z", "A-Z"],
        stderr=subprocess.PIPE,
    )
    try:
        assert b"serving" in reply.stderr.readline()
        assert bus.request(service, b"from python", timeout=BOUND) == b"FROM PYTHON"
    finally:
        reply.send_signal(signal.SIGTERM)
        assert reply.wait(BOUND) == 0
    with bus.server(service) as srv:
        t = serve_in_thread(srv, lambda d: b"python says " + d, 1)
        r = broker.cli("req", "--raw", service, "hi")
        t.join(BOUND)
    assert r.stdout == b"python says hi"
