"""Large bodies over a plain socket: received into their own buffer (receive_buffers), frame after
frame in one event-loop step, and every copy of a fanout delivered intact."""

from __future__ import annotations

import os
import struct

import pika
import trio
import trio.testing

from amqpbroker import core
from amqpbroker.protocol import ServerConnection, spec
from amqpbroker.protocol._connection import BODY_BUFFER_MIN
from amqpbroker.protocol._frames import method_frame
from amqpbroker.server import Server
from amqpbroker.server.amqp import AMQPConnection
from amqpbroker.server.flow import PublishGate

from .raw import handshake, raw_frame

BODIES = [os.urandom(size) for size in (BODY_BUFFER_MIN, 1024 * 1024 + 1, 100, 3 * 1024 * 1024 + 17)]
QUEUES = ("a", "b", "c")


def fan_out_and_consume(port: int) -> dict[str, list[bytes]]:
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    try:
        channel = connection.channel()
        channel.exchange_declare("fan", "fanout")
        for name in QUEUES:
            channel.queue_declare(name)
            channel.queue_bind(name, "fan")
        for body in BODIES:
            channel.basic_publish("fan", "", body)
        received: dict[str, list[bytes]] = {}
        for name in QUEUES:
            received[name] = []
            while len(received[name]) < len(BODIES):
                method, _, body = channel.basic_get(name, auto_ack=True)
                if method is not None:
                    received[name].append(body)
        return received
    finally:
        connection.close()


def count_reads_in_place(monkeypatch) -> list[int]:
    """The bytes of each read into buffers the protocol offered (receive_buffers), as they happen."""
    reads: list[int] = []
    received_into = ServerConnection.received_into

    def counting(self: ServerConnection, count: int, now: float) -> list:
        reads.append(count)
        return received_into(self, count, now)

    monkeypatch.setattr(ServerConnection, "received_into", counting)
    return reads


async def test_large_bodies_are_read_into_their_buffer_and_reach_every_queue_intact(monkeypatch) -> None:
    in_place = count_reads_in_place(monkeypatch)
    server = Server(core.Broker(), host="127.0.0.1", port=0)
    with trio.fail_after(60):  # a guard against a hang, not a measured duration
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            received = await trio.to_thread.run_sync(fan_out_and_consume, server.port)
            server.shutdown()
    assert received == {name: BODIES for name in QUEUES}
    assert sum(in_place) > 3 * 1024 * 1024, "the large bodies were read into their buffers"


async def test_body_frames_waiting_in_the_socket_are_read_in_one_step(monkeypatch) -> None:
    steps: list[list[str]] = []
    handle = AMQPConnection._handle

    def recording(self: AMQPConnection, events: list) -> None:
        steps.append([type(event).__name__ for event in events])
        handle(self, events)

    monkeypatch.setattr(AMQPConnection, "_handle", recording)
    reads = count_reads_in_place(monkeypatch)
    broker = core.Broker()
    server_sock, client_sock = trio.socket.socketpair()
    frame_max = 16 * 1024
    body = os.urandom(8 * (frame_max - 8))
    header = struct.pack(">HHQ", 60, 0, len(body)) + b"\x00\x00"
    frames = [method_frame(1, spec.BasicPublish(routing_key="nowhere").encode()), raw_frame(2, 1, header)]
    frames += [raw_frame(3, 1, body[at:at + frame_max - 8]) for at in range(0, len(body), frame_max - 8)]
    connection = AMQPConnection(trio.SocketStream(server_sock), broker, "test", PublishGate(broker.memory))
    with client_sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run)
            await client_sock.send(handshake(frame_max=frame_max) + method_frame(1, spec.ChannelOpen().encode()))
            await trio.testing.wait_all_tasks_blocked()
            steps.clear()
            reads.clear()
            await client_sock.send(b"".join(frames))  # all of it waits in the socket before the reader runs
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    # The read that got the method and header frames, then one for the eight body frames.
    assert steps == [[], ["ContentReceived"]]
    assert len(reads) == 1, f"one readv into the body's buffer, not one per frame: {reads}"
