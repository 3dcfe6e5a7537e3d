"""Large bodies over a plain socket: received into their own buffer (receive_buffers), and every
copy of a fanout delivered intact."""

from __future__ import annotations

import os

import pika
import trio

from amqpbroker import core
from amqpbroker.protocol import ServerConnection
from amqpbroker.protocol._connection import BODY_BUFFER_MIN
from amqpbroker.server import Server

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


async def test_large_bodies_are_read_into_their_buffer_and_reach_every_queue_intact(monkeypatch) -> None:
    in_place: list[int] = []
    received_into = ServerConnection.received_into

    def counting(self: ServerConnection, count: int, now: float) -> list:
        in_place.append(count)
        return received_into(self, count, now)

    monkeypatch.setattr(ServerConnection, "received_into", counting)
    server = Server(core.Broker(), host="127.0.0.1", port=0)
    with trio.fail_after(60):  # a guard against a hang, not a measured duration
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            received = await trio.to_thread.run_sync(fan_out_and_consume, server.port)
            server.shutdown()
    assert received == {name: BODIES for name in QUEUES}
    assert sum(in_place) > 3 * 1024 * 1024, "the large bodies were read into their buffers"
