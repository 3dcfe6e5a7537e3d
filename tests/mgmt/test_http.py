"""The HTTP layer's bounds: malformed, oversized, slow and too many clients cost only themselves,
and AMQP traffic goes on meanwhile."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
import trio

from amqpbroker.mgmt.http import HTTPLimits, HTTPRequest, HTTPResponse, HTTPServer

from .client import ApiClient, raw_exchange, status_of

_SMALL = HTTPLimits(max_head=1024, max_body=100, request_timeout=0.2, idle_timeout=0.2, max_connections=2)


async def _echo(request: HTTPRequest) -> HTTPResponse:
    return HTTPResponse(200, f"{request.method} {request.target} {len(request.body)}".encode())


async def _serve(limits: HTTPLimits) -> AsyncIterator[int]:
    """An HTTP server with `limits`, echoing what it got; yields its port."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPServer(_echo, limits).serve, listeners)
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@pytest.fixture
async def small_server() -> AsyncIterator[int]:
    """A server with small limits and short timeouts."""
    async for port in _serve(_SMALL):
        yield port


@pytest.fixture
async def patient_server() -> AsyncIterator[int]:
    """A server with `_SMALL`'s connection limit, whose timeouts no slow machine reaches: a
    connection it holds stays held while a test opens more."""
    async for port in _serve(HTTPLimits(request_timeout=60, idle_timeout=60, max_connections=_SMALL.max_connections)):
        yield port


async def _exchange(port: int, data: bytes) -> bytes:
    """Sends `data`, then reads until the server closes the connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                received += chunk
        return received


async def test_two_requests_on_one_connection(small_server: int) -> None:
    requests = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    received = await _exchange(small_server, requests + b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert b"GET /a 0" in received and b"PUT /b 3" in received and b"GET /c 0" in received


async def test_garbage_is_400_and_closed(small_server: int) -> None:
    assert status_of(await _exchange(small_server, b"NOT HTTP AT ALL\r\n\r\n")) == 400


async def test_a_head_too_large_is_431(small_server: int) -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n"
    assert status_of(await _exchange(small_server, request)) == 431


async def test_a_client_still_sending_a_refused_head_gets_the_431_not_a_reset(small_server: int) -> None:
    # Closed with the rest unread, the socket would be reset under the client, reply and all.
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 512 * 1024 + b"\r\n\r\n"
    assert status_of(await _exchange(small_server, request)) == 431


async def test_a_declared_body_too_large_is_413_before_it_is_sent(small_server: int) -> None:
    received = await _exchange(small_server, b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
    assert status_of(received) == 413


async def test_a_chunked_body_too_large_is_413(small_server: int) -> None:
    chunk = b"40\r\n" + b"x" * 64 + b"\r\n"
    request = b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2 + b"0\r\n\r\n"
    assert status_of(await _exchange(small_server, request)) == 413


async def test_a_body_within_the_limit_is_served(small_server: int) -> None:
    request = b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" + b"x" * 100
    received = await _exchange(small_server, request)
    assert status_of(received) == 200 and received.endswith(b"PUT / 100")


async def test_a_request_left_unfinished_is_408_and_closed(small_server: int) -> None:
    assert status_of(await _exchange(small_server, b"GET / HTTP/1.1\r\nHost: x\r\n")) == 408


async def test_an_idle_connection_is_closed_without_a_word(small_server: int) -> None:
    assert await _exchange(small_server, b"") == b""


async def test_connections_over_the_limit_are_closed_at_once(patient_server: int) -> None:
    held = [await trio.open_tcp_stream("127.0.0.1", patient_server) for _ in range(_SMALL.max_connections)]
    # The server counts a connection once it has accepted it: an answered request says it has.
    for stream in held:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 200")
    assert await _exchange(patient_server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    for stream in held:
        await stream.aclose()


# Against the broker itself (and the reference): the same requests, as status codes.


def test_broker_answers_garbage_with_400(api: ApiClient) -> None:
    assert status_of(raw_exchange(api.host, api.port, b"GARBAGE\r\n\r\n")) == 400


def test_broker_answers_a_huge_head_with_431(api: ApiClient) -> None:
    request = b"GET /api/overview HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert status_of(raw_exchange(api.host, api.port, request)) == 431


def test_broker_answers_an_oversized_body_with_413_without_reading_it(api: ApiClient, embedded) -> None:
    # RabbitMQ reads (and waits for) the whole body before it refuses it; we refuse at the header.
    request = b"PUT /api/queues/%2F/q HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n"
    assert status_of(raw_exchange(api.host, api.port, request)) == 413


def test_amqp_traffic_goes_on_under_bad_http_clients(api: ApiClient, amqp, unique, cleanup) -> None:
    channel = amqp.channel()
    queue = cleanup.queue(unique("traffic"))
    channel.queue_declare(queue)
    stop = threading.Event()
    errors: list[BaseException] = []

    def abuse() -> None:
        garbage = [b"GARBAGE\r\n\r\n", b"GET /api/overview HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
                   b"POST /api/exchanges/%2F/amq.default/publish HTTP/1.1\r\nHost: x\r\n"
                   b"Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\nContent-Length: 5\r\n\r\n{bad}"]
        try:
            while not stop.is_set():
                for request in garbage:
                    raw_exchange(api.host, api.port, request)
        except BaseException as exc:
            errors.append(exc)

    abusers = [threading.Thread(target=abuse) for _ in range(3)]
    for thread in abusers:
        thread.start()
    try:
        for number in range(200):
            channel.basic_publish("", queue, str(number).encode())
        received = []
        while len(received) < 200:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                received.append(int(body))
    finally:
        stop.set()
        for thread in abusers:
            thread.join()
    assert received == list(range(200))
    assert not errors
    assert api.get("/api/overview").status == 200


async def test_a_client_that_does_not_read_its_response_is_dropped() -> None:
    async def large(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, b"x" * (32 * 1024 * 1024))

    server = HTTPServer(large, _SMALL)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve, listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(10):
            while server.open_connections == 0:
                await trio.sleep(0.01)
            while server.open_connections:
                await trio.sleep(0.05)
        await stream.aclose()
        nursery.cancel_scope.cancel()
