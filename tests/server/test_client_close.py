"""A client's connection.close is answered with close-ok and the socket is left for the client to
close, as RabbitMQ leaves it: a client that sent more after its close (amqplib flushes a full
channel buffer behind it) reads its close-ok instead of a reset. What the connection had is
released at once; the socket is closed by the broker after the negotiated heartbeat, 30 s at most."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio
import trio.testing

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import content_frames, method_frame
from amqpbroker.server import Server

from .raw import handshake

PUBLISH = spec.BasicPublish(exchange="", routing_key="nowhere")
# More than the socket buffers hold, so that the broker has unread input when it answers the close.
PUBLISHES_AFTER_CLOSE = 20_000


async def read_methods_until(stream: trio.SocketStream, wanted: type) -> list:
    """The methods the broker sends, up to the first of type `wanted`."""
    buffered, methods = b"", []
    while True:
        data = await stream.receive_some(1 << 16)
        assert data, f"the broker closed the socket before sending {wanted.__name__}"
        buffered += data
        while len(buffered) >= 7:
            frame_type, size = buffered[0], int.from_bytes(buffered[3:7], "big")
            if len(buffered) < size + 8:
                break
            payload, buffered = buffered[7:7 + size], buffered[size + 8:]
            if frame_type == 1:
                method = spec.METHODS[(int.from_bytes(payload[:2], "big"), int.from_bytes(payload[2:4], "big"))]
                methods.append(method.decode(payload))
                if isinstance(methods[-1], wanted):
                    return methods


async def close_with_publishes_behind(stream: trio.SocketStream, heartbeat: int = 0) -> list:
    """Opens a connection with an exclusive queue, then sends connection.close followed by many
    publishes without reading: the methods the broker sent, up to its close-ok."""
    publish = content_frames(1, PUBLISH.CLASS_ID, PUBLISH.encode(), b"\x00\x00", b"after the close", 4096)
    await stream.send_all(handshake(heartbeat=heartbeat) + method_frame(1, spec.ChannelOpen().encode())
                          + method_frame(1, spec.QueueDeclare(queue="mine", exclusive=True).encode()))
    await read_methods_until(stream, spec.QueueDeclareOk)
    async with trio.open_nursery() as nursery:
        # Sent from a task of its own: the broker's answer is read while the publishes go out.
        nursery.start_soon(stream.send_all, method_frame(0, spec.ConnectionClose(200, "bye").encode())
                           + publish * PUBLISHES_AFTER_CLOSE)
        return await read_methods_until(stream, spec.ConnectionCloseOk)


@contextlib.asynccontextmanager
async def closed_by_client(heartbeat: int = 0) -> AsyncIterator[tuple[Server, trio.SocketStream, list]]:
    """A served client that has sent connection.close with many publishes behind it: the server,
    the client's stream, and the methods the broker sent it up to its close-ok."""
    server = Server(core.Broker(), host="127.0.0.1", port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        with trio.fail_after(30):  # a guard against a hang, not a measured duration
            methods = await close_with_publishes_behind(stream, heartbeat)
        yield server, stream, methods
        await stream.aclose()
        server.shutdown()


async def test_close_ok_is_read_and_the_socket_left_open_for_the_client() -> None:
    async with closed_by_client() as (server, stream, methods):
        assert methods == [spec.ConnectionCloseOk()]
        # Released at once, though the socket stays open; nothing the client sent after the close counted.
        vhost = server.broker.vhosts["/"]
        assert "mine" not in vhost.queues and not server.broker.connections
        assert sum(queue.stats.publish for queue in vhost.queues.values()) == 0
        with trio.move_on_after(0.5):
            await stream.receive_some(1)
            raise AssertionError("the broker closed the socket under the client")
        await stream.aclose()
        with trio.fail_after(30):
            while server.connections:
                await trio.sleep(0.01)


async def test_the_broker_closes_the_socket_after_the_heartbeat_if_the_client_does_not() -> None:
    async with closed_by_client(heartbeat=1) as (_, stream, _):
        with trio.fail_after(30):
            while await stream.receive_some(1 << 16):
                pass  # an orderly end of the socket, not a reset (which would raise)


async def test_a_connection_whose_client_has_closed_is_dropped_at_once_when_the_broker_closes_it() -> None:
    # As at shutdown: it has nothing left to say, so nothing to wait for.
    async with closed_by_client() as (server, _, _):
        (connection,) = server.connections
        connection.close(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
        await trio.testing.wait_all_tasks_blocked()
        assert not server.connections
