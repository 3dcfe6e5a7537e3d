"""A body that is only in the store is read in a thread: while the disk is slow, the consumer due
that body waits for it, and every other connection goes on."""

from __future__ import annotations

import threading

import pika
import trio

from amqpbroker import core
from amqpbroker.protocol import BasicProperties
from amqpbroker.server import Server
from amqpbroker.store import MemoryStore
from amqpbroker.store.base import Enqueue, PutMessage, PutQueue


class SlowStore(MemoryStore):
    """Its body reads wait until `release` is set, as on a disk that is slow to answer."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = threading.Event()
        self.release = threading.Event()

    def load_body(self, message_id: int) -> bytes:
        self.reading.set()
        # Bounded, so that a read wrongly made on the event loop ends the test instead of hanging it.
        self.release.wait(60)
        return super().load_body(message_id)


def stored_queue(store: SlowStore) -> None:
    """A durable queue "q" holding one persistent message, as a restart leaves it: the body on disk."""
    core.Broker(store=store).commit()  # the default vhost and user
    persistent = BasicProperties(delivery_mode=2).encode()
    store.apply([PutQueue("/", "q", False, {}), PutMessage(1000, "", "q", persistent, b"from the disk"),
                 Enqueue("/", "q", 0, 1000)])


def consume_one(port: int) -> bytes:
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    try:
        channel = connection.channel()
        for _method, _properties, body in channel.consume("q", auto_ack=True, inactivity_timeout=60):
            return body
    finally:
        connection.close()


def round_trip(port: int) -> bytes | None:
    """Declare, publish and get back a message on another connection."""
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    try:
        channel = connection.channel()
        channel.queue_declare("other")
        channel.basic_publish("", "other", b"meanwhile")
        while (got := channel.basic_get("other", auto_ack=True))[0] is None:
            pass
        return got[2]
    finally:
        connection.close()


async def test_a_slow_body_read_blocks_neither_the_event_loop_nor_other_connections() -> None:
    store = SlowStore()
    stored_queue(store)
    broker = core.Broker(store=store)
    (entry,) = broker.vhosts["/"].queues["q"].peek()
    assert entry.message.body is None
    server = Server(broker, host="127.0.0.1", port=0)
    consumed: list[bytes] = []

    async def consumer() -> None:
        consumed.append(await trio.to_thread.run_sync(consume_one, server.port))

    try:
        with trio.fail_after(60):  # a guard against a blocked loop, not a measured duration
            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve)
                nursery.start_soon(consumer)
                await trio.to_thread.run_sync(store.reading.wait)
                # The read is under way and held: another connection is served all the same.
                assert await trio.to_thread.run_sync(round_trip, server.port) == b"meanwhile"
                assert consumed == [] and not store.release.is_set()
                store.release.set()
                while not consumed:
                    await trio.sleep(0.01)
                server.shutdown()
    finally:
        store.release.set()
    assert consumed == [b"from the disk"]
