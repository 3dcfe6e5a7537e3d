"""Durable queues' TTL, priorities, streams and deduplication, and delayed messages, across a broker
process restart (SIGTERM or SIGKILL)."""

from __future__ import annotations

import time

import pika
import pytest

from .conftest import BrokerProcess
from .test_restart import HOW, get_all


@pytest.mark.parametrize("how", HOW)
def test_expired_messages_do_not_come_back_and_priorities_do(broker_process: BrokerProcess, how: str) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("ttl", durable=True, arguments={"x-message-ttl": 200})
    channel.queue_declare("prio", durable=True, arguments={"x-max-priority": 5})
    channel.basic_publish("", "ttl", b"expires", pika.BasicProperties(delivery_mode=2))
    channel.basic_publish("", "prio", b"short", pika.BasicProperties(delivery_mode=2, expiration="200"))
    for body, priority in [(b"low", 1), (b"high", 5), (b"mid", 3)]:
        channel.basic_publish("", "prio", body, pika.BasicProperties(delivery_mode=2, priority=priority))
    connection.close()

    broker_process.restart(how)
    # Gone while the broker was down, or at its first timer turn: never delivered either way.
    time.sleep(0.3)

    connection = broker_process.connect()
    channel = connection.channel()
    assert get_all(channel, "ttl") == []
    assert [body for body, _ in get_all(channel, "prio")] == [b"high", b"mid", b"low"]
    connection.close()


@pytest.mark.parametrize("how", HOW)
def test_a_stream_keeps_its_log_and_offsets(broker_process: BrokerProcess, how: str) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.queue_declare("stream", durable=True, arguments={"x-queue-type": "stream"})
    channel.confirm_delivery()
    for body in (b"s0", b"s1"):
        # Transient: a stream keeps every message.
        channel.basic_publish("", "stream", body)
    connection.close()

    broker_process.restart(how)

    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("", "stream", b"s2")
    channel.basic_qos(prefetch_count=3)
    read = []
    channel.basic_consume(
        "stream",
        lambda ch, method, properties, body: read.append((body, properties.headers["x-stream-offset"])),
        arguments={"x-stream-offset": "first"},
    )
    deadline = time.monotonic() + 10
    while len(read) < 3 and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    assert read == [(b"s0", 0), (b"s1", 1), (b"s2", 2)]
    channel.basic_ack(3, multiple=True)
    connection.close()


@pytest.mark.parametrize("how", HOW)
def test_confirmed_delayed_messages_survive_and_one_due_while_down_is_routed_at_start(
    broker_process: BrokerProcess, how: str
) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("delayed", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
    channel.queue_declare("due", durable=True)
    channel.queue_bind("due", "delayed", "k")
    for body, delay, mode in [(b"due-while-down", 200, 2), (b"due-later", 3000, 2), (b"transient", 200, 1)]:
        properties = pika.BasicProperties(delivery_mode=mode, headers={"x-delay": delay})
        # Confirmed once held on disk (persistent) or held in memory (transient).
        channel.basic_publish("delayed", "k", body, properties)
    connection.close()

    broker_process.restart(how)

    connection = broker_process.connect()
    channel = connection.channel()
    found: list[tuple[bytes, bool]] = []
    deadline = time.monotonic() + 15
    while len(found) < 2 and time.monotonic() < deadline:
        found += get_all(channel, "due")
        time.sleep(0.05)
    # Routed once each, in their order; the transient one did not outlive the broker.
    time.sleep(0.3)
    assert found + get_all(channel, "due") == [(b"due-while-down", False), (b"due-later", False)]
    connection.close()


@pytest.mark.parametrize("how", HOW)
def test_a_deduplication_queue_still_drops_duplicates_of_its_messages(broker_process: BrokerProcess, how: str) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("dedup", durable=True, arguments={"x-message-deduplication": True})
    properties = pika.BasicProperties(delivery_mode=2, headers={"x-deduplication-header": "order-7"})
    channel.basic_publish("", "dedup", b"order-7", properties)
    connection.close()

    broker_process.restart(how)

    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("", "dedup", b"order-7 retried", properties)
    assert [body for body, _ in get_all(channel, "dedup")] == [b"order-7"]
    connection.close()
