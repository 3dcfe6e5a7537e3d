"""A client on the broker's own host gets a congestion control that does not pace the broker's
sends (Reno); the clients of other hosts keep the system's choice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from amqpbroker import core
from amqpbroker.server import Server
from amqpbroker.server.app import _unpaced_if_local

SYSTEM_DEFAULT = Path("/proc/sys/net/ipv4/tcp_congestion_control")

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_CONGESTION") or not SYSTEM_DEFAULT.exists()
    or SYSTEM_DEFAULT.read_text().strip() == "reno",
    reason="needs Linux with a default congestion control other than Reno, to tell the two apart",
)


def congestion_control(sock: socket.socket | trio.socket.SocketType) -> str:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode()


async def test_a_client_on_the_loopback_is_served_without_pacing() -> None:
    server = Server(core.Broker(), host="127.0.0.1", port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        client = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with client:
            await client.send_all(b"AMQP\x00\x00\x09\x01")
            await client.receive_some(4096)  # connection.start: the broker has taken the connection
            (connection,) = server.connections
            assert congestion_control(connection._socket) == "reno"
            assert congestion_control(client.socket) == SYSTEM_DEFAULT.read_text().strip(), "the client's own is its own"
        server.shutdown()


@pytest.mark.parametrize(
    ("peer", "local", "expected"),
    [
        ("192.0.2.7", "198.51.100.1", None),  # another host: the system's choice stays
        ("198.51.100.1", "198.51.100.1", "reno"),  # this host, through one of its own addresses
        ("::1", "::1", "reno"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", "reno"),
    ],
)
def test_only_the_clients_of_this_host_lose_pacing(peer: str, local: str, expected: str | None) -> None:
    with socket.socket() as sock:
        _unpaced_if_local(sock, peer, local)
        assert congestion_control(sock) == (expected or SYSTEM_DEFAULT.read_text().strip())
