"""RabbitMQ's consumer features: single active consumer queues, consumer priorities,
x-cancel-on-ha-failover, and the delivery acknowledgement timeout (ours only: RabbitMQ's is
configured for the whole node)."""

from __future__ import annotations

import os

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from .support import Inbox, get_within, reply, unique, wait_until

SAC = {"x-single-active-consumer": True}


def _publish(channel, queue: str, count: int) -> None:
    for number in range(1, count + 1):
        channel.basic_publish("", queue, str(number).encode())


def _consumers(connection, queue: str, count: int, prefetch: int = 0, **kwargs) -> list[tuple]:
    """`count` consumers of `queue`, each on its own channel: (channel, inbox) pairs."""
    opened = []
    for _ in range(count):
        channel = connection.channel()
        if prefetch:
            channel.basic_qos(prefetch_count=prefetch)
        inbox = Inbox()
        channel.basic_consume(queue, inbox, **kwargs)
        opened.append((channel, inbox))
    return opened


def _redelivered(inbox: Inbox) -> list[tuple[bytes, bool]]:
    return [(body, method.redelivered) for method, _, body in inbox.deliveries]


# single active consumer


def test_only_the_first_consumer_receives(connection, channel):
    queue = channel.queue_declare("", exclusive=True, arguments=SAC).method.queue
    (_, first), (_, second), (_, third) = _consumers(connection, queue, 3)
    _publish(channel, queue, 4)
    wait_until(connection, lambda: len(first.deliveries) == 4, what="4 deliveries")
    assert first.bodies == [b"1", b"2", b"3", b"4"]
    assert second.deliveries == third.deliveries == []


def test_consumer_count_counts_the_waiting_consumers(connection, channel):
    queue = channel.queue_declare("", exclusive=True, arguments=SAC).method.queue
    _consumers(connection, queue, 3)
    assert channel.queue_declare(queue, passive=True).method.consumer_count == 3


def test_the_next_consumer_takes_over_with_the_unacked_messages_when_the_channel_closes(connection, channel):
    queue = channel.queue_declare("", exclusive=True, arguments=SAC).method.queue
    (first_channel, first), (_, second), (_, third) = _consumers(connection, queue, 3)
    _publish(channel, queue, 3)
    wait_until(connection, lambda: len(first.deliveries) == 3, what="3 deliveries")
    first_channel.close()
    wait_until(connection, lambda: len(second.deliveries) == 3, what="3 redeliveries")
    assert _redelivered(second) == [(b"1", True), (b"2", True), (b"3", True)]
    assert third.deliveries == []


def test_the_next_consumer_takes_over_when_the_active_one_is_cancelled(connection, channel):
    queue = channel.queue_declare("", exclusive=True, arguments=SAC).method.queue
    (first_channel, first), (_, second) = _consumers(connection, queue, 2, auto_ack=True)
    first_channel.basic_cancel(first_channel.consumer_tags[0])
    _publish(channel, queue, 2)
    wait_until(connection, lambda: len(second.deliveries) == 2, what="2 deliveries")
    assert first.deliveries == []


def test_the_next_consumer_takes_over_when_the_active_connection_closes(connect, connection, channel):
    queue = unique("sac")
    channel.queue_declare(queue, auto_delete=True, arguments=SAC)
    other = connect()
    [(_, first)] = _consumers(other, queue, 1)
    [(_, second)] = _consumers(connection, queue, 1)
    _publish(channel, queue, 2)
    wait_until(other, lambda: len(first.deliveries) == 2, what="2 deliveries")
    other.close()
    wait_until(connection, lambda: len(second.deliveries) == 2, what="2 redeliveries")
    assert _redelivered(second) == [(b"1", True), (b"2", True)]


def test_the_waiting_consumer_of_highest_priority_takes_over(connection, channel):
    queue = channel.queue_declare("", exclusive=True, arguments=SAC).method.queue
    [(first_channel, first)] = _consumers(connection, queue, 1, auto_ack=True)
    [(_, low)] = _consumers(connection, queue, 1, auto_ack=True, arguments={"x-priority": 1})
    [(_, high)] = _consumers(connection, queue, 1, auto_ack=True, arguments={"x-priority": 9})
    [(_, high_later)] = _consumers(connection, queue, 1, auto_ack=True, arguments={"x-priority": 9})
    first_channel.close()
    _publish(channel, queue, 2)
    wait_until(connection, lambda: len(high.deliveries) == 2, what="2 deliveries")
    assert low.deliveries == high_later.deliveries == []


def test_an_exclusive_consumer_is_refused(connection, channel):
    queue = channel.queue_declare("", exclusive=True, arguments=SAC).method.queue
    consumer = connection.channel()
    with pytest.raises(ChannelClosedByBroker) as closed:
        consumer.basic_consume(queue, Inbox(), exclusive=True)
    assert reply(closed) == (403, f"ACCESS_REFUSED - queue '{queue}' in vhost '/' in exclusive use")


def test_basic_get_takes_from_a_single_active_consumer_queue(channel):
    queue = channel.queue_declare("", exclusive=True, arguments=SAC).method.queue
    channel.basic_publish("", queue, b"m")
    _, _, body = get_within(channel, queue, auto_ack=True)
    assert body == b"m"


# consumer priorities


def test_higher_priorities_first_round_robin_among_equals_and_the_overflow_below(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    [(_, low)] = _consumers(connection, queue, 1, prefetch=100, arguments={"x-priority": 0})
    [(_, high), (_, high_too)] = _consumers(connection, queue, 2, prefetch=2, arguments={"x-priority": 10})
    _publish(channel, queue, 7)
    # Each consumer is on a channel of its own: RabbitMQ's deliveries on different channels may
    # arrive in any order, so all 7 are waited for.
    wait_until(connection, lambda: len(high.deliveries + high_too.deliveries + low.deliveries) == 7,
               what="7 deliveries")
    assert (high.bodies, high_too.bodies, low.bodies) == ([b"1", b"3"], [b"2", b"4"], [b"5", b"6", b"7"])


def test_a_higher_priority_consumer_receives_again_once_it_acks(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    [(high_channel, high)] = _consumers(connection, queue, 1, prefetch=1, arguments={"x-priority": 5})
    [(_, low)] = _consumers(connection, queue, 1, prefetch=1)
    _publish(channel, queue, 3)
    wait_until(connection, lambda: (len(high.deliveries), len(low.deliveries)) == (1, 1), what="one each")
    high_channel.basic_ack(high.tags[0])
    wait_until(connection, lambda: len(high.deliveries) == 2, what="a second delivery")
    assert (high.bodies, low.bodies) == ([b"1", b"3"], [b"2"])


def test_cancel_on_ha_failover_is_accepted(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    [(_, inbox)] = _consumers(connection, queue, 1, auto_ack=True, arguments={"x-cancel-on-ha-failover": True})
    _publish(channel, queue, 1)
    wait_until(connection, lambda: len(inbox.deliveries) == 1, what="a delivery")


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"x-priority": "5"}, '"expected integer, got longstr"'),
        ({"x-cancel-on-ha-failover": "x"}, "{unacceptable_type,longstr}"),
    ],
)
def test_an_invalid_consumer_argument_is_refused(connection, channel, arguments, error):
    queue = channel.queue_declare("", exclusive=True).method.queue
    consumer = connection.channel()
    with pytest.raises(ChannelClosedByBroker) as closed:
        consumer.basic_consume(queue, Inbox(), arguments=arguments)
    [name] = arguments
    assert reply(closed) == (
        406, f"PRECONDITION_FAILED - invalid arg '{name}' for queue '{queue}' in vhost '/': {error}"
    )


# delivery acknowledgement timeout

CONSUMER_TIMEOUT_MS = 300


@pytest.fixture
def short_timeout_connection():
    """A connection to a broker of ours whose consumer timeout is CONSUMER_TIMEOUT_MS."""
    if os.environ.get("AMQP_TEST_URL"):
        pytest.skip("RabbitMQ's consumer_timeout is set for the whole node (30 minutes), not by a test")
    from amqpbroker.testing import Broker

    with Broker(port=0, consumer_timeout=CONSUMER_TIMEOUT_MS) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        yield connection
        connection.close()


def test_an_unacknowledged_delivery_times_out_closing_its_channel_and_is_requeued(short_timeout_connection):
    connection = short_timeout_connection
    consumer = connection.channel()
    queue = consumer.queue_declare("", exclusive=True).method.queue
    consumer.basic_publish("", queue, b"m")
    consumer.basic_consume(queue, Inbox())
    with pytest.raises(ChannelClosedByBroker) as closed:
        consumer.start_consuming()
    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - delivery acknowledgement on channel {consumer.channel_number} timed out. "
        f"Timeout value used: {CONSUMER_TIMEOUT_MS} ms. This timeout value can be configured, "
        "see consumers doc guide to learn more",
    )
    method, _, body = get_within(connection.channel(), queue, auto_ack=True)
    assert (body, method.redelivered) == (b"m", True)
    assert connection.is_open
