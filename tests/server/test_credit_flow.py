"""Credit flow over real sockets: a publisher whose queue's consumers are behind is not read from
until they catch up; other publishers and every consumer go on, and a connection that consumes
what it publishes, or consumes elsewhere while it waits, never deadlocks."""

from __future__ import annotations

import pika
import pytest

from amqpbroker.core.credit import FLOW_HIGH
from amqpbroker.server import amqp
from amqpbroker.testing import Broker

from .blocking import wait_for

# Small bodies: every publish of a test fits in the socket buffers while its publisher waits,
# so pika's basic_publish never blocks the test.
COUNT = 3 * FLOW_HIGH
PREFETCH = 10


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits that never run into FLOW_PAUSE_LIMIT, however slow the machine."""
    monkeypatch.setattr(amqp, "FLOW_PAUSE_LIMIT", 600.0)


def in_flow(broker: Broker) -> int:
    """How many connections credit flow keeps waiting."""
    return broker.call(lambda: sum(connection.in_flow for connection in broker.server.connections))


class Consumer:
    """A pika consumer that holds its deliveries until told to ack them, then acks as they come."""

    def __init__(self, connection: pika.BlockingConnection, queue: str, prefetch: int = PREFETCH) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self.channel.queue_declare(queue)
        self.channel.basic_qos(prefetch_count=prefetch)
        self.bodies: list[bytes] = []
        self.acked = 0
        self.ack_limit = 0
        """How many deliveries it acks in all, as they come; it holds those past it."""
        self.channel.basic_consume(queue, self._on_message)

    def _on_message(self, channel, method, properties, body: bytes) -> None:
        self.bodies.append(body)
        if len(self.bodies) <= self.ack_limit:
            channel.basic_ack(method.delivery_tag)
            self.acked = len(self.bodies)

    def ack_until(self, count: int) -> None:
        """Acks what it holds, up to `count` deliveries in all, and from now on those as they come."""
        self.ack_limit = count
        upto = min(len(self.bodies), count)
        if upto > self.acked:
            self.channel.basic_ack(upto, multiple=True)  # delivery tags count from 1 on its one channel
            self.acked = upto

    def ack_all(self) -> None:
        """Acks what it holds, and from now on every delivery as it comes."""
        self.ack_until(COUNT)


def publish(channel, queue: str, count: int = COUNT) -> None:
    for n in range(count):
        channel.basic_publish("", queue, n.to_bytes(4, "big"))


def numbered(count: int = COUNT) -> list[bytes]:
    return [n.to_bytes(4, "big") for n in range(count)]


def test_publisher_faster_than_its_consumer_waits_while_another_publisher_does_not(patient) -> None:
    with Broker(port=0) as broker:
        params = pika.URLParameters(broker.url)
        consumer = Consumer(pika.BlockingConnection(params), "slow")
        publisher = pika.BlockingConnection(params)
        publish(publisher.channel(), "slow")
        wait_for(lambda: in_flow(broker) == 1, publisher)
        publisher.process_data_events(time_limit=0.2)
        queue = broker.queue("slow")
        routed = queue.message_count + queue.unacked_count
        assert FLOW_HIGH < routed < COUNT, "the publisher was read from while its queue pressed"

        other = pika.BlockingConnection(params)
        other_channel = other.channel()
        other_channel.queue_declare("other")
        publish(other_channel, "other")
        wait_for(lambda: broker.queue("other").message_count == COUNT, other)
        assert in_flow(broker) == 1

        # The pressing queue's consumer receives and acks as usual while its publisher waits: 100
        # acked, and its prefetch held, leave the queue far above FLOW_LOW.
        consumer.ack_until(100)
        wait_for(lambda: len(consumer.bodies) == 100 + PREFETCH, consumer.connection)
        assert in_flow(broker) == 1
        consumer.ack_all()
        wait_for(lambda: len(consumer.bodies) == COUNT, consumer.connection)
        assert consumer.bodies == numbered()
        assert in_flow(broker) == 0
        for connection in (other, publisher, consumer.connection):
            connection.close()


def test_connection_that_publishes_into_the_queue_it_consumes_is_never_paused(patient) -> None:
    with Broker(port=0) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        consumer = Consumer(connection, "loop")
        publish(connection.channel(), "loop")
        wait_for(lambda: broker.queue("loop").message_count == COUNT - 10, connection)
        assert in_flow(broker) == 0
        consumer.ack_all()
        wait_for(lambda: len(consumer.bodies) == COUNT, connection)
        assert consumer.bodies == numbered()
        connection.close()


def test_paused_publisher_goes_on_receiving_and_acking_once_let_go(patient) -> None:
    # A worker consumes "jobs" and publishes into "slow" on the same connection; while it waits
    # for "slow", its deliveries still reach it, and nothing stays stuck once "slow" drains.
    with Broker(port=0) as broker:
        params = pika.URLParameters(broker.url)
        slow = Consumer(pika.BlockingConnection(params), "slow")
        worker = pika.BlockingConnection(params)
        jobs = Consumer(worker, "jobs")
        jobs.ack_all()
        publish(worker.channel(), "slow")
        wait_for(lambda: in_flow(broker) == 1, worker)

        producer = pika.BlockingConnection(params)
        publish(producer.channel(), "jobs", 1000)
        wait_for(lambda: len(jobs.bodies) >= 10, worker)

        slow.ack_all()
        wait_for(lambda: len(slow.bodies) == COUNT, slow.connection)
        wait_for(lambda: len(jobs.bodies) == 1000, worker)
        assert slow.bodies == numbered() and jobs.bodies == numbered(1000)
        assert in_flow(broker) == 0
        for connection in (producer, worker, slow.connection):
            connection.close()


def test_queue_whose_consumer_stalls_does_not_hold_its_publisher_for_ever(monkeypatch) -> None:
    monkeypatch.setattr(amqp, "FLOW_PAUSE_LIMIT", 0.1)
    with Broker(port=0) as broker:
        params = pika.URLParameters(broker.url)
        stalled = Consumer(pika.BlockingConnection(params), "stalled", prefetch=1)
        publisher = pika.BlockingConnection(params)
        publish(publisher.channel(), "stalled")
        wait_for(lambda: broker.queue("stalled").message_count == COUNT - 1, publisher)
        assert in_flow(broker) == 0
        stalled.connection.close()
        publisher.close()
