"""By default the broker listens as RabbitMQ does: on every address, IPv4 and IPv6, on one port, so
that a client given `[::1]`, or a `localhost` that resolves to it first, finds it."""

from __future__ import annotations

import errno
import socket

import pytest
import trio

from amqpbroker import core
from amqpbroker.server import Server


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def greeted(address: str, port: int) -> bool:
    """Whether a client connecting to `address` gets connection.start."""
    stream = await trio.open_tcp_stream(address, port)
    async with stream:
        await stream.send_all(b"AMQP\x00\x00\x09\x01")
        return (await stream.receive_some(4096))[:5] == b"\x01\x00\x00\x00\x00"


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback address")
async def test_the_default_listener_serves_ipv4_and_ipv6_on_one_port() -> None:
    server = Server(core.Broker(), port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        for address in ("127.0.0.1", "::1"):
            assert await greeted(address, server.port), address
        server.shutdown()



async def test_a_machine_without_ipv6_is_served_on_ipv4(monkeypatch) -> None:
    real = trio.open_tcp_listeners

    async def no_ipv6(port: int, *, host: str | None = None, **kwargs: object) -> list:
        if host == "::":
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return await real(port, host=host, **kwargs)

    monkeypatch.setattr(trio, "open_tcp_listeners", no_ipv6)
    server = Server(core.Broker(), port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        assert await greeted("127.0.0.1", server.port)
        server.shutdown()
