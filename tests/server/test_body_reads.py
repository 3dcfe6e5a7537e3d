"""A body that is only in the store is read in a thread: while the disk is slow, the consumer,
the basic.get or the management API's get due that body waits for it, and every other connection
(and channel) goes on."""

from __future__ import annotations

import functools
import json
import socket
import threading
from typing import Callable, TypeVar

import pika
import trio

from amqpbroker import core
from amqpbroker.mgmt import ROUTES, Api, Node
from amqpbroker.mgmt.http import HTTPRequest, HTTPResponse
from amqpbroker.protocol import BasicProperties, spec
from amqpbroker.protocol._frames import content_frames, method_frame
from amqpbroker.server import Server
from amqpbroker.server.amqp import HELD_LIMIT
from amqpbroker.server.bodies import read_bodies
from amqpbroker.store import MemoryStore
from amqpbroker.store.base import Enqueue, PutMessage, PutQueue

from .raw import FrameReader, handshake

T = TypeVar("T")


class SlowStore(MemoryStore):
    """Its body reads wait until `release` is set, as on a disk that is slow to answer."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = threading.Event()
        self.release = threading.Event()
        self.threads: set[int] = set()
        """The threads its body reads ran on."""

    def load_body(self, message_id: int) -> bytes:
        self.threads.add(threading.get_ident())
        self.reading.set()
        # Bounded, so that a read wrongly made on the event loop ends the test instead of hanging it.
        self.release.wait(60)
        return super().load_body(message_id)


def stored_queue(store: MemoryStore) -> None:
    """A durable queue "q" holding one persistent message, as a restart leaves it: the body on disk."""
    core.Broker(store=store).commit()  # the default vhost and user
    persistent = BasicProperties(delivery_mode=2).encode()
    store.apply([PutQueue("/", "q", False, {}), PutMessage(1000, "", "q", persistent, b"from the disk"),
                 Enqueue("/", "q", 0, 1000)])


def recovered(store: MemoryStore) -> tuple[core.Broker, core.Queue]:
    """A broker started over `store` with `stored_queue` in it, and its queue "q"."""
    stored_queue(store)
    broker = core.Broker(store=store)
    return broker, broker.vhosts["/"].queues["q"]


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


def get_then_declare(port: int, store: SlowStore) -> list[tuple[int, str]]:
    """On channel 1, a basic.get of the message on disk, then a queue.declare; on channel 2, once the
    get's read is under way, another queue.declare, whose answer lets the read go on. What the
    broker answered on the two channels, in order ("released" where the read was let go)."""
    answered: list = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(60)
        sock.sendall(handshake() + b"".join(method_frame(channel, method.encode()) for channel, method in (
            (1, spec.ChannelOpen()),
            (2, spec.ChannelOpen()),
            (1, spec.BasicGet(queue="q", no_ack=True)),
            (1, spec.QueueDeclare(queue="after the get")),
        )))
        assert store.reading.wait(60)
        sock.sendall(method_frame(2, spec.QueueDeclare(queue="meanwhile").encode()))
        for channel, method in FrameReader(sock).methods():
            if channel:
                answered.append((channel, type(method).__name__))
            if (channel, type(method)) == (2, spec.QueueDeclareOk):
                answered.append("released")
                store.release.set()
            elif (channel, type(method)) == (1, spec.QueueDeclareOk):
                break
    return answered


async def run_client(broker: core.Broker, store: SlowStore, client: Callable[[int, SlowStore], T]) -> T:
    """Serves `broker` while `client(port, store)` runs in a thread; what it returns. The store's
    reads are let go at the end, whatever happened."""
    server = Server(broker, host="127.0.0.1", port=0)
    try:
        with trio.fail_after(60):  # a guard against a blocked loop, not a measured duration
            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve)
                result = await trio.to_thread.run_sync(client, server.port, store)
                server.shutdown()
    finally:
        store.release.set()
    return result


async def test_a_basic_get_waits_for_its_body_in_a_thread_and_answers_in_its_channel_order() -> None:
    store = SlowStore()
    stored_queue(store)
    answered = await run_client(core.Broker(store=store), store, get_then_declare)
    # Channel 2 was answered while the read was held; channel 1's declare waited for the get-ok.
    assert answered == [
        (1, "ChannelOpenOk"), (2, "ChannelOpenOk"), (2, "QueueDeclareOk"), "released",
        (1, "BasicGetOk"), (1, "QueueDeclareOk"),
    ]
    assert threading.get_ident() not in store.threads


def get_publish_close_reopen(port: int, store: SlowStore) -> list:
    """On channel 1, a basic.get of the message on disk, a publish, a queue.declare and
    channel.close, sent at once; once the get's read is under way, a queue.declare on channel 2,
    whose answer lets the read go on ("released"). Once channel 1's close is answered, it is opened
    again and declares another queue. What the broker answered, in order, up to that declare-ok."""
    publish = spec.BasicPublish(exchange="", routing_key="q")
    answered: list = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(60)
        sock.sendall(handshake() + b"".join((
            method_frame(1, spec.ChannelOpen().encode()),
            method_frame(2, spec.ChannelOpen().encode()),
            method_frame(1, spec.BasicGet(queue="q", no_ack=True).encode()),
            content_frames(1, publish.CLASS_ID, publish.encode(), b"\x00\x00", b"published", 4096),
            method_frame(1, spec.QueueDeclare(queue="declared before the close").encode()),
            method_frame(1, spec.ChannelClose(reply_code=200, reply_text="bye").encode()),
        )))
        assert store.reading.wait(60)
        sock.sendall(method_frame(2, spec.QueueDeclare(queue="meanwhile").encode()))
        for channel, method in FrameReader(sock).methods():
            if not channel:
                continue
            answered.append((channel, getattr(method, "queue", None) or type(method).__name__))
            if (channel, type(method)) == (2, spec.QueueDeclareOk):
                answered.append("released")
                store.release.set()
            elif type(method) is spec.ChannelCloseOk:
                sock.sendall(method_frame(1, spec.ChannelOpen().encode())
                             + method_frame(1, spec.QueueDeclare(queue="after the reopen").encode()))
            elif (channel, method) == (1, spec.QueueDeclareOk("after the reopen", 0, 0)):
                break
    return answered


async def test_a_channel_closed_while_its_get_waits_is_answered_in_order_once_the_body_is_read() -> None:
    # As RabbitMQ answers a channel.close: after everything the client sent before it.
    store = SlowStore()
    broker, queue = recovered(store)
    answered = await run_client(broker, store, get_publish_close_reopen)
    assert answered == [
        (1, "ChannelOpenOk"), (2, "ChannelOpenOk"), (2, "meanwhile"), "released",
        (1, "BasicGetOk"), (1, "declared before the close"), (1, "ChannelCloseOk"),
        (1, "ChannelOpenOk"), (1, "after the reopen"),
    ]
    # The message on disk was got; the publish sent before the close went in.
    [published] = queue.peek()
    assert published.message.body == b"published"


def get_publish_close_connection(port: int, store: SlowStore) -> list[str]:
    """On channel 1, a basic.get of the message on disk and a publish, then connection.close, sent at
    once; the get's read goes on once it is under way. What the broker answered, in order."""
    publish = spec.BasicPublish(exchange="", routing_key="q")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(60)
        sock.sendall(handshake() + b"".join((
            method_frame(1, spec.ChannelOpen().encode()),
            method_frame(1, spec.BasicGet(queue="q", no_ack=True).encode()),
            content_frames(1, publish.CLASS_ID, publish.encode(), b"\x00\x00", b"published", 4096),
            method_frame(0, spec.ConnectionClose(reply_code=200, reply_text="bye").encode()),
        )))
        assert store.reading.wait(60)
        store.release.set()
        answered = []
        for channel, method in FrameReader(sock).methods():
            answered.append(type(method).__name__)
            if type(method) is spec.ConnectionCloseOk:
                break
    return answered[3:]  # after start, tune and open-ok


async def test_a_connection_closed_while_a_get_waits_is_answered_after_the_get_and_keeps_what_came_before() -> None:
    # As RabbitMQ answers a connection.close: after everything the client sent before it.
    store = SlowStore()
    broker, queue = recovered(store)
    answered = await run_client(broker, store, get_publish_close_connection)
    assert answered == ["ChannelOpenOk", "BasicGetOk", "ConnectionCloseOk"]
    [published] = queue.peek()
    assert published.message.body == b"published"


def get_then_timeout(port: int, store: SlowStore, then: bytes, reopen: int) -> list[str]:
    """On channel 1, an unacknowledged delivery, a basic.get of the message on disk, then `then`
    (held behind the get); once the consumer timeout closes channel 1, channel `reopen` is opened.
    What happened, in order."""
    happened: list[str] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)  # the guard against a reader that never goes on again
        sock.sendall(
            handshake()
            + method_frame(1, spec.ChannelOpen().encode())
            + method_frame(1, spec.QueueDeclare(queue="work").encode())
            + PUBLISH_TO_WORK
            + method_frame(1, spec.BasicConsume(queue="work", consumer_tag="unacked").encode())
            + method_frame(1, spec.BasicGet(queue="q", no_ack=True).encode())
            + then
        )
        for channel, method in FrameReader(sock).methods():
            if (channel, type(method)) == (1, spec.ChannelClose):
                happened.append(f"channel 1 closed: {method.reply_code}")
                sock.sendall(method_frame(1, spec.ChannelCloseOk().encode())
                             + method_frame(reopen, spec.ChannelOpen().encode()))
            elif (channel, type(method)) == (1, spec.ChannelCloseOk):
                happened.append("the client's close answered")
            elif (channel, type(method)) == (reopen, spec.ChannelOpenOk) and happened:
                happened.append(f"channel {reopen} opened")
                break
    return happened


_PUBLISH = spec.BasicPublish(exchange="", routing_key="work")
PUBLISH_TO_WORK = content_frames(1, _PUBLISH.CLASS_ID, _PUBLISH.encode(), b"\x00\x00", b"x" * 4000, 4096)


async def test_a_channel_closed_for_an_error_while_its_get_waits_lets_the_reader_go_on() -> None:
    store = SlowStore()
    stored_queue(store)
    broker = core.Broker(store=store, consumer_timeout=200)
    # More than HELD_LIMIT of publishes behind the get: the reader stops until the channel closes.
    flood = functools.partial(get_then_timeout, then=PUBLISH_TO_WORK * (HELD_LIMIT // 4000 * 2), reopen=2)
    assert await run_client(broker, store, flood) == ["channel 1 closed: 406", "channel 2 opened"]


async def test_a_channel_closed_for_an_error_while_its_get_waits_answers_the_clients_close_too() -> None:
    # As RabbitMQ: its close, then close-ok for the client's; the number is free again.
    store = SlowStore()
    stored_queue(store)
    broker = core.Broker(store=store, consumer_timeout=200)
    close = functools.partial(
        get_then_timeout, then=method_frame(1, spec.ChannelClose(reply_code=200, reply_text="bye").encode()), reopen=1
    )
    assert await run_client(broker, store, close) == [
        "channel 1 closed: 406", "the client's close answered", "channel 1 opened",
    ]


class UnreadableStore(MemoryStore):
    def load_body(self, message_id: int) -> bytes:
        raise OSError("read error (simulated)")


async def management_get(broker: core.Broker, responses: list[HTTPResponse]) -> None:
    """POST /api/queues/%2F/q/get for one message, requeued."""
    body = json.dumps({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}).encode()
    request = HTTPRequest(
        "POST", "/api/queues/%2F/q/get", {"authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="}, body, "127.0.0.1"
    )
    responses.append(await Api(broker, ROUTES, Node("test@here", [])).handle(request))


async def test_the_management_api_get_waits_for_a_body_read_in_a_thread() -> None:
    store = SlowStore()
    broker, queue = recovered(store)
    responses: list[HTTPResponse] = []
    try:
        with trio.fail_after(60):  # a guard against a blocked loop, not a measured duration
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_bodies, broker)
                nursery.start_soon(management_get, broker, responses)
                assert await trio.to_thread.run_sync(store.reading.wait, 60)
                # The event loop runs this task while the read is held; the message is taken, not lost.
                assert responses == [] and queue.message_count == 0
                store.release.set()
                while not responses:
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
    finally:
        store.release.set()
    [response] = responses
    assert response.status == 200
    [message] = json.loads(response.body)
    assert (message["payload"], message["message_count"], message["redelivered"]) == ("from the disk", 0, False)
    [entry] = queue.peek()
    assert entry.redelivered  # requeued, as the get asked
    assert threading.get_ident() not in store.threads


async def test_a_management_api_get_whose_body_cannot_be_read_is_a_500_and_takes_nothing() -> None:
    store = UnreadableStore()
    broker, queue = recovered(store)
    responses: list[HTTPResponse] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_bodies, broker)
            await management_get(broker, responses)
            nursery.cancel_scope.cancel()
    assert responses[0].status == 500
    [entry] = queue.peek()
    assert entry.message.message_id == 1000 and not entry.redelivered


async def test_a_body_asked_for_before_the_reader_started_is_read() -> None:
    """As recovery asks for the bodies of what it dead-letters past a delivery limit."""
    store = MemoryStore()
    stored_queue(store)
    broker = core.Broker(store=store)
    (entry,) = broker.vhosts["/"].queues["q"].peek()
    found: list[bytes | None] = []

    class Waiter:
        def body_read(self, message: object, body: bytes | None) -> None:
            found.append(body)

    broker.bodies.request(entry.message, Waiter())
    with trio.fail_after(60):  # a guard against a lost request, not a measured duration
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_bodies, broker)
            while not found:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert found == [b"from the disk"]
