"""Publishers are blocked (connection.blocked, socket not read) while queued bodies exceed the
memory limit, and unblocked once consumers bring it back under."""

from __future__ import annotations

import time

import pika
import pytest

from amqpbroker.testing import Broker

BODY = b"x" * 10_000


def wait_for(condition, connection: pika.BlockingConnection, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        connection.process_data_events(time_limit=0.05)


def test_publisher_is_blocked_over_the_memory_limit_and_unblocked_when_drained() -> None:
    with Broker(port=0, memory_limit=100_000) as broker:
        params = pika.URLParameters(broker.url)
        publisher = pika.BlockingConnection(params)
        events: list[str] = []
        publisher.add_on_connection_blocked_callback(lambda conn, frame: events.append("blocked"))
        publisher.add_on_connection_unblocked_callback(lambda conn, frame: events.append("unblocked"))
        channel = publisher.channel()
        channel.queue_declare("q")
        for _ in range(15):
            channel.basic_publish("", "q", BODY)
        wait_for(lambda: events == ["blocked"], publisher)

        ready = broker.queue("q").message_count
        assert 10 <= ready <= 15
        for _ in range(5):
            channel.basic_publish("", "q", BODY)
        publisher.process_data_events(time_limit=0.3)
        assert broker.queue("q").message_count == ready, "a blocked publisher's socket was still read"

        consumer = pika.BlockingConnection(params)
        consumer_channel = consumer.channel()
        received = 0

        def drain() -> bool:
            nonlocal received
            while consumer_channel.basic_get("q", auto_ack=True)[0] is not None:
                received += 1
            return received == 20

        wait_for(drain, publisher)  # the publishes held in the socket arrive once unblocked
        wait_for(lambda: events[-1] == "unblocked", publisher)
        assert events[:2] == ["blocked", "unblocked"]
        consumer.close()
        publisher.close()


@pytest.mark.slow
def test_blocked_publisher_is_not_dropped_for_missed_heartbeats() -> None:
    with Broker(port=0, memory_limit=10_000) as broker:
        params = pika.URLParameters(broker.url)
        params.heartbeat = 1
        publisher = pika.BlockingConnection(params)
        events: list[str] = []
        publisher.add_on_connection_blocked_callback(lambda conn, frame: events.append("blocked"))
        channel = publisher.channel()
        channel.queue_declare("q")
        channel.basic_publish("", "q", BODY)
        channel.basic_publish("", "q", BODY)
        wait_for(lambda: events == ["blocked"], publisher)
        publisher.process_data_events(time_limit=3.5)  # well past two heartbeat intervals
        consumer = pika.BlockingConnection(pika.URLParameters(broker.url))
        consumer_channel = consumer.channel()
        wait_for(lambda: consumer_channel.basic_get("q", auto_ack=True)[0] is None, publisher)
        assert publisher.is_open
        channel.queue_declare("q", passive=True)  # the connection still works
        consumer.close()
        publisher.close()
