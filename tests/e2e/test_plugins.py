"""Deduplication (rabbitmq-message-deduplication) and the delayed-message exchange
(rabbitmq-delayed-message-exchange) with pika. The reference RabbitMQ here has neither plugin, so
these start a broker of their own and run against ours even when AMQP_TEST_URL is set."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from amqpbroker.protocol import BasicProperties
from amqpbroker.testing import Broker

from .rawamqp import BASIC_PUBLISH, FRAME_BODY, FRAME_HEADER, FRAME_METHOD, RawConnection, frame, shortstr
from .support import drain, get_within, reply

DEDUP = "x-deduplication-header"


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker(port=0) as started:
        yield started


@pytest.fixture
def connection(broker: Broker) -> Iterator[pika.BlockingConnection]:
    opened = pika.BlockingConnection(pika.URLParameters(broker.url))
    yield opened
    if opened.is_open:
        opened.close()


@pytest.fixture
def channel(connection: pika.BlockingConnection):
    opened = connection.channel()
    opened.confirm_delivery()
    return opened


def headers(**values: object) -> pika.BasicProperties:
    return pika.BasicProperties(headers={key.replace("_", "-"): value for key, value in values.items()})


# Deduplication


def test_a_queue_drops_a_duplicate_and_confirms_it_until_the_first_is_acknowledged(channel) -> None:
    queue = channel.queue_declare("", exclusive=True, arguments={"x-message-deduplication": True}).method.queue
    channel.basic_publish("", queue, b"order-1", headers(x_deduplication_header="order-1"))
    # The publisher's retry is confirmed (basic_publish would raise on a nack) and dropped.
    channel.basic_publish("", queue, b"order-1 again", headers(x_deduplication_header="order-1"))
    method, _, body = channel.basic_get(queue)
    assert body == b"order-1"
    assert channel.queue_declare(queue, passive=True).method.message_count == 0
    channel.basic_publish("", queue, b"while unacked", headers(x_deduplication_header="order-1"))
    channel.basic_ack(method.delivery_tag)
    channel.basic_publish("", queue, b"after the ack", headers(x_deduplication_header="order-1"))
    assert drain(channel, queue) == [b"after the ack"]


def test_an_exchange_routes_to_every_bound_queue_once_per_value(channel) -> None:
    channel.exchange_declare("dedup-x", "x-message-deduplication", auto_delete=True,
                             arguments={"x-cache-size": 100})
    queues = [channel.queue_declare("", exclusive=True).method.queue for _ in range(2)]
    for queue in queues:
        channel.queue_bind(queue, "dedup-x", routing_key=queue)
    for body, value in [(b"a", "1"), (b"a-retry", "1"), (b"b", "2")]:
        channel.basic_publish("dedup-x", "whatever", body, headers(x_deduplication_header=value))
    for queue in queues:
        assert drain(channel, queue) == [b"a", b"b"]


def test_an_exchange_cache_entry_expires_after_its_ttl(channel) -> None:
    channel.exchange_declare("dedup-ttl", "x-message-deduplication", auto_delete=True,
                             arguments={"x-cache-size": 100, "x-cache-ttl": 100})
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "dedup-ttl")
    channel.basic_publish("dedup-ttl", "", b"first", headers(x_deduplication_header="k"))
    time.sleep(0.15)
    channel.basic_publish("dedup-ttl", "", b"after the ttl", headers(x_deduplication_header="k"))
    assert drain(channel, queue) == [b"first", b"after the ttl"]


def test_an_exchange_without_a_cache_size_is_refused(channel) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_declare("dedup-bad", "x-message-deduplication")
    assert reply(closed) == (
        406, "PRECONDITION_FAILED - Missing or invalid argument, 'x-cache-size' must be an integer greater than 0"
    )


# Delayed messages


def test_a_delayed_message_arrives_after_one_sent_later_without_delay(channel) -> None:
    channel.exchange_declare("delayed-x", "x-delayed-message", auto_delete=True,
                             arguments={"x-delayed-type": "topic"})
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "delayed-x", "order.*")
    channel.basic_publish("delayed-x", "order.placed", b"delayed", headers(x_delay=200))
    channel.basic_publish("delayed-x", "order.placed", b"now")
    channel.basic_publish("delayed-x", "other", b"unrouted", headers(x_delay=1))
    _, _, first = get_within(channel, queue, auto_ack=True)
    _, properties, second = get_within(channel, queue, auto_ack=True)
    assert (first, second) == (b"now", b"delayed")
    assert properties.headers == {"x-delay": -200}


def test_a_mandatory_delayed_message_is_returned_at_once_and_routed_when_due(channel) -> None:
    channel.exchange_declare("delayed-m", "x-delayed-message", auto_delete=True,
                             arguments={"x-delayed-type": "direct"})
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "delayed-m", "k")
    with pytest.raises(UnroutableError):
        channel.basic_publish("delayed-m", "k", b"m", headers(x_delay=50), mandatory=True)
    assert get_within(channel, queue, auto_ack=True)[2] == b"m"


def test_an_exchange_without_a_delayed_type_is_refused(channel) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_declare("delayed-bad", "x-delayed-message")
    assert reply(closed) == (
        406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type"
    )


HELD = 100_000
BATCH = 1000


def publish_frames(exchange: str, routing_key: str, body: bytes, delay: int) -> bytes:
    """A basic.publish on channel 1 with its content header and body, as bytes to send."""
    encoded = BasicProperties(headers={"x-delay": delay}).encode()
    return (
        frame(FRAME_METHOD, 1, struct.pack(">HH", *BASIC_PUBLISH) + b"\x00\x00" + shortstr(exchange)
              + shortstr(routing_key) + b"\x00")
        + frame(FRAME_HEADER, 1, struct.pack(">HHQ", 60, 0, len(body)) + encoded)
        + frame(FRAME_BODY, 1, body)
    )


@pytest.mark.slow
def test_a_hundred_thousand_held_messages_leave_other_traffic_served(broker: Broker, channel) -> None:
    channel.exchange_declare("delayed-many", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "delayed-many", "k")
    probe_queue = channel.queue_declare("", exclusive=True).method.queue
    later = publish_frames("delayed-many", "k", b"later", 600_000) * BATCH
    published = threading.Event()

    def held() -> int:
        return broker.server.broker.vhosts["/"].exchanges["delayed-many"].held_count()

    with RawConnection(broker.url) as raw:
        raw.handshake()
        raw.open_channel(1)

        def publish_many() -> None:
            # A raw publisher: pika in this process would be far slower than the broker.
            try:
                for _ in range(HELD // BATCH):
                    raw.send(later)
                raw.send(publish_frames("delayed-many", "k", b"soon", 1))
            finally:
                published.set()

        publisher = threading.Thread(target=publish_many)
        publisher.start()
        # Another connection goes on being served while the messages arrive and are held.
        round_trips = 0
        while not published.is_set() or (round_trips < 10 and broker.call(held) < HELD):
            channel.basic_publish("", probe_queue, b"ping")
            assert channel.basic_get(probe_queue, auto_ack=True)[2] == b"ping"
            round_trips += 1
        publisher.join()
        # The one due soon is routed ahead of the 100,000 due later: the timers find it, no scan.
        assert get_within(channel, queue, auto_ack=True, timeout=60)[2] == b"soon"
        assert broker.call(held) == HELD
        channel.basic_publish("", probe_queue, b"still served")
        assert get_within(channel, probe_queue, auto_ack=True)[2] == b"still served"
    channel.exchange_delete("delayed-many")
    assert broker.call(lambda: broker.server.broker.memory.used) == 0
