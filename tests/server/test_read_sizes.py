"""How much the reader of one connection asks for at a time: about as many frames per read (and
so per event-loop step) whatever their size, within bounds; and, on a socket, no read tried where a
short read left it empty."""

from __future__ import annotations

import os
import struct

import trio
import trio.testing

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import method_frame
from amqpbroker.server import amqp
from amqpbroker.server.amqp import AMQPConnection
from amqpbroker.server.flow import PublishGate

from .raw import handshake, raw_frame


class RecordingStream(trio.abc.Stream):
    """One end of a memory stream pair that remembers the max_bytes of every receive_some."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self.asked: list[int] = []

    async def send_all(self, data) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes=None) -> bytes:
        self.asked.append(max_bytes)
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._stream.aclose()


def publish(body: bytes) -> bytes:
    """basic.publish of `body` on channel 1, to a queue that does not exist: it is dropped."""
    header = struct.pack(">HHQ", 60, 0, len(body)) + b"\x00\x00"
    return (method_frame(1, spec.BasicPublish(routing_key="nowhere").encode())
            + raw_frame(2, 1, header) + raw_frame(3, 1, body))


async def read_sizes(body_size: int, count: int = 40) -> list[int]:
    """The read sizes asked while a client publishes `count` messages of `body_size` bytes, one
    message at a time, each once the previous one was read."""
    broker = core.Broker()
    server_stream, client_stream = trio.testing.memory_stream_pair()
    recording = RecordingStream(server_stream)
    connection = AMQPConnection(recording, broker, "test", PublishGate(broker.memory))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        await client_stream.send_all(handshake(frame_max=131072) + method_frame(1, spec.ChannelOpen().encode()))
        await trio.testing.wait_all_tasks_blocked()
        recording.asked.clear()
        for _ in range(count):
            await client_stream.send_all(publish(b"x" * body_size))
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return recording.asked


async def test_small_publishes_are_read_in_the_smallest_reads() -> None:
    assert set(await read_sizes(100)) == {amqp._RECEIVE_SIZE}


async def test_reads_grow_with_the_frames_up_to_a_bound() -> None:
    asked = await read_sizes(10_240)
    assert amqp._RECEIVE_SIZE < asked[0] < amqp._RECEIVE_MAX
    assert asked[-1] == amqp._RECEIVE_MAX, "10 KiB frames: 256 of them are more than the bound"
    assert asked == sorted(asked)


async def test_after_a_read_that_emptied_the_socket_the_reader_waits_instead_of_reading(monkeypatch) -> None:
    reads: list[str] = []
    read = os.read

    def recording(fd: int, size: int) -> bytes:
        try:
            data = read(fd, size)
        except BlockingIOError:
            reads.append("nothing")
            raise
        reads.append("data")
        return data

    broker = core.Broker()
    server_sock, client_sock = trio.socket.socketpair()
    connection = AMQPConnection(trio.SocketStream(server_sock), broker, "test", PublishGate(broker.memory))
    with client_sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run)
            await client_sock.send(handshake(frame_max=131072) + method_frame(1, spec.ChannelOpen().encode()))
            await trio.testing.wait_all_tasks_blocked()
            monkeypatch.setattr(amqp.os, "read", recording)
            for _ in range(20):
                await client_sock.send(publish(b"x" * 100))
                await trio.testing.wait_all_tasks_blocked()
            monkeypatch.undo()
            nursery.cancel_scope.cancel()
    # Each publish read whole at once; an empty socket is waited on, not read and found empty.
    assert reads == ["data"] * 20
