"""Output is written through from the step that queued it, and a write-through never reorders
frames or loses count of what is still to be sent."""

from __future__ import annotations

import socket
import struct

import trio
import trio.testing

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import method_frame
from amqpbroker.server.amqp import AMQPConnection, write_through
from amqpbroker.server.flow import PublishGate

from .raw import handshake

LARGE = 4 * 1024 * 1024  # far more than a socket pair's buffers hold


def connection_over_socketpair() -> tuple[AMQPConnection, socket.socket]:
    """A connection on one end of a socket pair (its tasks not started), its protocol with channel 1
    open and nothing to send, and the client's end."""
    server_end, client_end = socket.socketpair()
    client_end.setblocking(False)
    broker = core.Broker()
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(server_end))
    connection = AMQPConnection(stream, broker, "test", PublishGate(broker.memory))
    opened = handshake(frame_max=131072) + method_frame(1, spec.ChannelOpen().encode())
    connection.protocol.receive_data(opened, 0.0)
    connection.protocol.data_to_send()
    return connection, client_end


def deliver(connection: AMQPConnection, body: bytes) -> None:
    connection.send_content(1, spec.BasicDeliver("ctag", 1), b"\x00\x00", body)


def read_available(sock: socket.socket) -> bytes:
    """What the client can read now, without waiting."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            chunk = b""
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """Frame types and payloads, in order; the data must end at a frame's end."""
    out = []
    while data:
        frame_type, _, size = struct.unpack_from(">BHI", data)
        assert data[7 + size] == 0xCE, "not at a frame boundary"
        out.append((frame_type, data[7:7 + size]))
        data = data[8 + size:]
    return out


def bodies(data: bytes) -> bytes:
    return b"".join(payload for frame_type, payload in frames(data) if frame_type == 3)


async def test_a_write_through_sends_without_the_writer_task() -> None:
    connection, client = connection_over_socketpair()
    deliver(connection, b"first")
    assert read_available(client) == b"", "sent before the step ended"
    write_through()
    assert bodies(read_available(client)) == b"first"
    assert connection.pending_bytes == 0


async def test_what_the_socket_does_not_take_goes_first_and_stays_counted() -> None:
    connection, client = connection_over_socketpair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        await trio.testing.wait_all_tasks_blocked()
        deliver(connection, b"a" * LARGE)
        write_through()
        received = read_available(client)
        assert 0 < len(received) < LARGE
        partly_sent = len(received)
        unsent = connection.pending_bytes

        # Queued while the rest of the first waits for the writer, which has not run yet.
        deliver(connection, b"b" * 100)
        write_through()
        await trio.testing.wait_all_tasks_blocked()
        # The writer is now sending the rest: its bytes, not the third's, must fill the room made here.
        received += read_available(client)
        deliver(connection, b"c" * 100)
        write_through()

        while connection.pending_bytes:
            received += read_available(client)
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    received += read_available(client)

    assert bodies(received) == b"a" * LARGE + b"b" * 100 + b"c" * 100
    first_delivery = 0
    body_bytes = 0
    for frame_type, payload in frames(received):
        first_delivery += 8 + len(payload)
        body_bytes += len(payload) if frame_type == 3 else 0
        if body_bytes == LARGE:
            break
    assert partly_sent + unsent == first_delivery


async def test_a_delivery_to_a_channel_closed_already_is_neither_sent_nor_counted() -> None:
    connection, client = connection_over_socketpair()
    connection.send_content(2, spec.BasicDeliver("ctag", 1), b"\x00\x00", b"x" * LARGE)
    assert connection.pending_bytes == 0 and connection.writable
    write_through()
    assert read_available(client) == b""
