"""Output queued while events are handled is written through when the handling ends, without
waking the connection's writer task; a write-through never reorders frames or loses count of what
is still to be sent; output queued at any other time is sent by the writer."""

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


def delivered_in_a_handling(connection: AMQPConnection, body: bytes) -> None:
    with write_through():
        deliver(connection, body)


class TaskSteps(trio.abc.Instrument):
    """Names the tasks that run a step."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


async def test_a_write_through_sends_without_the_writer_task() -> None:
    connection, client = connection_over_socketpair()
    with write_through():
        deliver(connection, b"first")
        assert read_available(client) == b"", "sent before the handling ended"
    assert bodies(read_available(client)) == b"first"
    assert connection.pending_bytes == 0


async def test_the_writer_task_wakes_only_for_output_queued_outside_a_handling() -> None:
    connection, client = connection_over_socketpair()
    steps = TaskSteps()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(steps)

        delivered_in_a_handling(connection, b"handled")
        await trio.testing.wait_all_tasks_blocked()
        assert bodies(read_available(client)) == b"handled"
        assert not any("_write_loop" in name for name in steps.names)

        deliver(connection, b"timer")
        await trio.testing.wait_all_tasks_blocked()
        assert bodies(read_available(client)) == b"timer"
        assert any("_write_loop" in name for name in steps.names)
        trio.lowlevel.remove_instrument(steps)
        nursery.cancel_scope.cancel()


async def test_what_the_socket_does_not_take_goes_first_and_stays_counted() -> None:
    connection, client = connection_over_socketpair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        await trio.testing.wait_all_tasks_blocked()
        delivered_in_a_handling(connection, b"a" * LARGE)
        received = read_available(client)
        assert 0 < len(received) < LARGE
        partly_sent = len(received)
        unsent = connection.pending_bytes

        # Queued while the rest of the first waits for the writer, which has not run yet.
        delivered_in_a_handling(connection, b"b" * 100)
        await trio.testing.wait_all_tasks_blocked()
        # The writer is now sending the rest: its bytes, not the third's, must fill the room made here.
        received += read_available(client)
        delivered_in_a_handling(connection, b"c" * 100)

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
    with write_through():
        connection.send_content(2, spec.BasicDeliver("ctag", 1), b"\x00\x00", b"x" * LARGE)
        assert connection.pending_bytes == 0 and connection.writable
    assert read_available(client) == b""
