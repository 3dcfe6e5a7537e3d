"""By default the broker listens as RabbitMQ does: on every address, IPv4 and IPv6, on one port, so
that a client given `[::1]`, or a `localhost` that resolves to it first, finds it."""

from __future__ import annotations

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


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback address")
async def test_the_default_listener_serves_ipv4_and_ipv6_on_one_port() -> None:
    server = Server(core.Broker(), port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        for address in ("127.0.0.1", "::1"):
            stream = await trio.open_tcp_stream(address, server.port)
            async with stream:
                await stream.send_all(b"AMQP\x00\x00\x09\x01")
                assert (await stream.receive_some(4096))[:5] == b"\x01\x00\x00\x00\x00", f"connection.start on {address}"
        server.shutdown()

