"""Streams seen from pika, as RabbitMQ 3.10 serves them to AMQP 0-9-1 clients: offsets, credit,
retention, and the methods a stream refuses.

A consumer is given a prefetch of exactly what it should get, so that nothing is still on its way
when the test closes the channel (pika would reject such a delivery, which a stream refuses).
"""

from __future__ import annotations

import datetime

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from .support import Inbox, reply, round_trip, unique, wait_until

STREAM = {"x-queue-type": "stream"}


@pytest.fixture
def stream(channel, cleanup) -> str:
    name = cleanup.queue(unique("stream"))
    channel.queue_declare(name, durable=True, arguments=STREAM)
    return name


def publish(channel, queue: str, *bodies: bytes) -> None:
    """Publishes with confirms, one by one, so that each message is in the log before the next."""
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish("", queue, body)


class Reader(Inbox):
    """A consumer's deliveries, and the channel it consumes on."""

    def __init__(self, channel) -> None:
        super().__init__()
        self.channel = channel


def read(connection, queue: str, offset: object, count: int, *, prefetch: int | None = None) -> Reader:
    """A new consumer on its own channel from `offset`, once it got `count` deliveries."""
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch or max(count, 1))
    inbox = Reader(channel)
    channel.basic_consume(queue, inbox, arguments={"x-stream-offset": offset})
    wait_until(connection, lambda: len(inbox.deliveries) >= count, what=f"{count} deliveries")
    return inbox


def offsets(inbox: Inbox) -> list[int]:
    return [properties.headers["x-stream-offset"] for _, properties, _ in inbox.deliveries]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [("first", [0, 1, 2]), ("last", [2]), (1, [1, 2]), (-5, [0, 1, 2]), ("1h", [0, 1, 2])],
)
def test_a_consumer_reads_from_its_offset_with_the_offset_in_a_header(
    connection, channel, stream, offset, expected
) -> None:
    publish(channel, stream, b"m0", b"m1", b"m2")

    inbox = read(connection, stream, offset, len(expected))

    assert inbox.bodies == [b"m%d" % i for i in expected]
    assert offsets(inbox) == expected
    assert [method.redelivered for method, _, _ in inbox.deliveries] == [False] * len(expected)


def test_timestamp_offsets(connection, channel, stream) -> None:
    publish(channel, stream, b"m")

    past = read(connection, stream, datetime.datetime(2000, 1, 1), 1)
    future = read(connection, stream, datetime.datetime(2100, 1, 1), 0)
    round_trip(future.channel)

    assert past.bodies == [b"m"]
    assert future.bodies == []


def test_next_reads_only_what_is_published_after_it(connection, channel, stream) -> None:
    publish(channel, stream, b"before")
    inbox = read(connection, stream, "next", 0)
    round_trip(inbox.channel)

    publish(channel, stream, b"after")
    wait_until(connection, lambda: inbox.bodies == [b"after"], what="the message published after")
    assert offsets(inbox) == [1]


def test_acks_give_credit_and_take_nothing_away(connection, channel, stream) -> None:
    publish(channel, stream, b"a", b"b", b"c")
    first = read(connection, stream, "first", 2, prefetch=2)
    round_trip(first.channel)
    assert first.bodies == [b"a", b"b"]

    first.channel.basic_ack(2, multiple=True)
    wait_until(connection, lambda: len(first.deliveries) == 3, what="the third delivery")

    first.channel.basic_ack(3)
    again = read(connection, stream, "first", 3)
    assert again.bodies == [b"a", b"b", b"c"]
    ok = channel.queue_declare(stream, durable=True, arguments=STREAM).method
    assert (ok.message_count, ok.consumer_count) == (0, 0)


def test_consuming_needs_a_prefetch(channel, stream) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_consume(stream, Inbox())
    assert reply(closed) == (
        406, f"PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '{stream}' in vhost '/''"
    )


def test_the_prefetch_is_checked_before_automatic_acknowledgement(channel, stream) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_consume(stream, Inbox(), auto_ack=True)
    assert reply(closed)[0] == 406


def test_exclusive_consumers_share_a_stream(connection, channel, stream) -> None:
    publish(channel, stream, b"m")
    channel.basic_qos(prefetch_count=2)
    inbox = Inbox()
    channel.basic_consume(stream, inbox, exclusive=True, arguments={"x-stream-offset": "first"})
    channel.basic_consume(stream, inbox, exclusive=True, arguments={"x-stream-offset": "first"})
    wait_until(connection, lambda: len(inbox.bodies) == 2, what="a delivery to each consumer")
    assert inbox.bodies == [b"m", b"m"]


def test_an_invalid_offset_is_refused(channel, stream) -> None:
    channel.basic_qos(prefetch_count=1)
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_consume(stream, Inbox(), arguments={"x-stream-offset": "1x"})
    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '{stream}' in vhost '/': "
        '{invalid_stream_offset_arg,{longstr,<<"1x">>}}',
    )


@pytest.mark.parametrize(
    ("act", "text"),
    [
        (lambda channel, queue: channel.basic_get(queue), "basic.get not supported by stream queues"),
        (lambda channel, queue: channel.queue_purge(queue), "queue.purge not supported by stream queues"),
        (
            lambda channel, queue: (
                channel.basic_qos(prefetch_count=1),
                channel.basic_consume(queue, Inbox(), auto_ack=True),
            ),
            "automatic acknowledgement not supported by stream queues",
        ),
    ],
)
def test_what_a_stream_does_not_implement_closes_the_connection(channel, stream, act, text) -> None:
    with pytest.raises(ConnectionClosedByBroker) as closed:
        act(channel, stream)
    assert reply(closed) == (540, f"NOT_IMPLEMENTED - {text} queue '{stream}' in vhost '/'")


@pytest.mark.parametrize("requeue", [True, False])
def test_nack_closes_the_connection(connection, channel, stream, requeue) -> None:
    publish(channel, stream, b"m")
    inbox = read(connection, stream, "first", 1)

    inbox.channel.basic_nack(1, requeue=requeue)
    with pytest.raises(ConnectionClosedByBroker) as closed:
        round_trip(inbox.channel)
    assert reply(closed) == (
        540, f"NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues queue '{stream}' in vhost '/'"
    )


def test_retention_by_size_drops_the_oldest_segments(connection, channel, cleanup) -> None:
    name = cleanup.queue(unique("stream"))
    arguments = {**STREAM, "x-max-length-bytes": 3000, "x-stream-max-segment-size-bytes": 1000}
    channel.queue_declare(name, durable=True, arguments=arguments)
    publish(channel, name, *[b"%03d" % i + b"x" * 97 for i in range(100)])

    # How many messages a segment holds depends on how the broker counts their bytes; either way
    # the newest are kept and far fewer than were published.
    inbox = read(connection, name, "first", 1, prefetch=100)
    wait_until(connection, lambda: inbox.bodies[-1][:3] == b"099", what="the newest message")
    assert 0 < len(inbox.bodies) < 50
    assert inbox.bodies[0][:3] != b"000"
    assert sorted(offsets(inbox)) == offsets(inbox)


def test_without_a_segment_size_nothing_is_dropped_yet(connection, channel, cleanup) -> None:
    name = cleanup.queue(unique("stream"))
    channel.queue_declare(name, durable=True, arguments={**STREAM, "x-max-length-bytes": 100})
    publish(channel, name, *[b"x" * 100] * 10)

    inbox = read(connection, name, "first", 10)

    assert offsets(inbox) == list(range(10))


def test_a_stream_takes_its_own_arguments_and_refuses_a_classic_queue_s(channel, cleanup) -> None:
    name = cleanup.queue(unique("stream"))
    arguments = {**STREAM, "x-max-age": "7D", "x-max-length-bytes": 10**9, "x-stream-max-segment-size-bytes": 10**6}
    channel.queue_declare(name, durable=True, arguments=arguments)
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(unique("stream"), durable=True, arguments={**STREAM, "x-max-length": 10})
    assert reply(closed)[0] == 406
    assert reply(closed)[1].endswith("of queue type rabbit_stream_queue")
