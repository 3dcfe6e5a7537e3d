"""Consumers: basic.consume and cancel, consumer tags, exclusive consumers,
prefetch (basic.qos), round-robin dispatch and broker-initiated cancel."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from . import rawamqp
from .rawamqp import RawConnection
from .support import reply, round_trip, unique, wait_until


class Inbox:
    """Collects deliveries made to a BlockingChannel consumer callback."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[pika.spec.Basic.Deliver, pika.BasicProperties, bytes]] = []

    def __call__(self, channel, method, properties, body) -> None:
        self.deliveries.append((method, properties, body))

    @property
    def bodies(self) -> list[bytes]:
        return [body for _, _, body in self.deliveries]

    @property
    def tags(self) -> list[int]:
        return [method.delivery_tag for method, _, _ in self.deliveries]


def _publish(channel, queue, count, prefix=""):
    for number in range(1, count + 1):
        channel.basic_publish("", queue, f"{prefix}{number}".encode())


def test_consumer_receives_published_messages_in_order(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    inbox = Inbox()
    tag = channel.basic_consume(queue, inbox)

    _publish(channel, queue, 5)
    wait_until(connection, lambda: len(inbox.deliveries) == 5, what="5 deliveries")

    assert inbox.bodies == [b"1", b"2", b"3", b"4", b"5"]
    assert inbox.tags == [1, 2, 3, 4, 5]
    method = inbox.deliveries[0][0]
    assert (method.consumer_tag, method.exchange, method.routing_key, method.redelivered) == (tag, "", queue, False)


def test_consumer_with_auto_ack_leaves_nothing_unacked(connection):
    channel = connection.channel()
    name = unique("auto-ack")
    channel.queue_declare(name, exclusive=True)
    inbox = Inbox()
    channel.basic_consume(name, inbox, auto_ack=True)

    _publish(channel, name, 3)
    wait_until(connection, lambda: len(inbox.deliveries) == 3, what="3 deliveries")
    channel.close()

    assert connection.channel().queue_declare(name, passive=True).method.message_count == 0


def test_broker_generates_consumer_tag_with_amq_ctag_prefix(amqp_url):
    queue = unique("tags")
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.declare_queue(1, queue)

        raw.consume(1, queue, "")
        first = rawamqp.read_shortstr(raw.expect(rawamqp.BASIC_CONSUME_OK).arguments)
        raw.consume(1, queue, "")
        second = rawamqp.read_shortstr(raw.expect(rawamqp.BASIC_CONSUME_OK).arguments)
        raw.close()

    assert first.startswith("amq.ctag-")
    assert second.startswith("amq.ctag-")
    assert first != second


def test_cancel_stops_deliveries_and_unacked_messages_can_still_be_acked(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    inbox = Inbox()
    tag = channel.basic_consume(queue, inbox)
    _publish(channel, queue, 2)
    wait_until(connection, lambda: len(inbox.deliveries) == 2, what="2 deliveries")

    channel.basic_cancel(tag)
    channel.basic_publish("", queue, b"after cancel")
    channel.basic_ack(inbox.tags[-1], multiple=True)
    round_trip(channel)

    assert tag not in channel.consumer_tags
    assert inbox.bodies == [b"1", b"2"]
    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert (body, method.redelivered, method.message_count) == (b"after cancel", False, 0)


def test_consume_from_missing_queue_is_not_found(channel):
    name = unique("missing")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_consume(name, Inbox())

    assert reply(closed) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_second_consumer_on_exclusively_consumed_queue_is_access_refused(connection):
    name = unique("exclusive-consumer")
    holder = connection.channel()
    holder.queue_declare(name, exclusive=True)
    holder.basic_consume(name, Inbox(), exclusive=True)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_consume(name, Inbox())

    assert reply(closed) == (
        403,
        f"ACCESS_REFUSED - queue '{name}' in vhost '/' in exclusive use",
    )


def test_exclusive_consume_on_queue_with_consumers_is_access_refused(connection):
    name = unique("shared-consumer")
    holder = connection.channel()
    holder.queue_declare(name, exclusive=True)
    holder.basic_consume(name, Inbox())
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_consume(name, Inbox(), exclusive=True)

    assert reply(closed) == (
        403,
        f"ACCESS_REFUSED - queue '{name}' in vhost '/' in exclusive use",
    )


def test_exclusive_consumer_receives_everything(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    inbox = Inbox()
    channel.basic_consume(queue, inbox, auto_ack=True, exclusive=True)

    _publish(channel, queue, 3)

    wait_until(connection, lambda: len(inbox.deliveries) == 3, what="3 deliveries")


def test_per_consumer_prefetch_limits_unacked_deliveries(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_qos(prefetch_count=2)
    inbox = Inbox()
    channel.basic_consume(queue, inbox)

    _publish(channel, queue, 5)
    wait_until(connection, lambda: len(inbox.deliveries) == 2, what="2 deliveries")
    connection.process_data_events(time_limit=0.2)
    assert inbox.bodies == [b"1", b"2"]

    channel.basic_ack(inbox.tags[0])
    wait_until(connection, lambda: len(inbox.deliveries) == 3, what="a 3rd delivery")
    connection.process_data_events(time_limit=0.2)
    assert inbox.bodies == [b"1", b"2", b"3"]

    channel.basic_ack(inbox.tags[2], multiple=True)
    wait_until(connection, lambda: len(inbox.deliveries) == 5, what="the remaining deliveries")
    assert inbox.bodies == [b"1", b"2", b"3", b"4", b"5"]


def test_per_consumer_prefetch_applies_to_each_consumer_of_the_channel(connection, channel):
    first_queue = channel.queue_declare("", exclusive=True).method.queue
    second_queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_qos(prefetch_count=2, global_qos=False)
    first, second = Inbox(), Inbox()
    channel.basic_consume(first_queue, first)
    channel.basic_consume(second_queue, second)

    _publish(channel, first_queue, 4)
    _publish(channel, second_queue, 4)
    wait_until(connection, lambda: len(first.deliveries) == 2 and len(second.deliveries) == 2, what="2 + 2")
    connection.process_data_events(time_limit=0.2)

    assert (first.bodies, second.bodies) == ([b"1", b"2"], [b"1", b"2"])


def test_global_prefetch_limits_unacked_deliveries_across_the_channel(connection, channel):
    first_queue = channel.queue_declare("", exclusive=True).method.queue
    second_queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_qos(prefetch_count=3, global_qos=True)
    first, second = Inbox(), Inbox()
    channel.basic_consume(first_queue, first)
    channel.basic_consume(second_queue, second)

    _publish(channel, first_queue, 4)
    _publish(channel, second_queue, 4)
    wait_until(connection, lambda: len(first.deliveries) + len(second.deliveries) == 3, what="3 deliveries")
    connection.process_data_events(time_limit=0.2)
    assert len(first.deliveries) + len(second.deliveries) == 3

    channel.basic_ack(0, multiple=True)
    wait_until(connection, lambda: len(first.deliveries) + len(second.deliveries) == 6, what="3 more deliveries")
    connection.process_data_events(time_limit=0.2)
    assert len(first.deliveries) + len(second.deliveries) == 6


def test_a_per_consumer_prefetch_lifts_the_global_one(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 3)
    channel.basic_qos(prefetch_count=1, global_qos=True)
    channel.basic_qos(prefetch_count=0)
    inbox = Inbox()
    channel.basic_consume(queue, inbox)

    wait_until(connection, lambda: len(inbox.deliveries) == 3, what="3 deliveries")


def test_consuming_a_quorum_queue_under_a_global_prefetch_is_connection_error_540(connection, channel, cleanup):
    queue = cleanup.queue(unique("qq-global-qos"))
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_qos(prefetch_count=5, global_qos=True)

    with pytest.raises(ConnectionClosedByBroker) as closed:
        channel.basic_consume(queue, Inbox())

    assert reply(closed) == (540, f"NOT_IMPLEMENTED - queue '{queue}' in vhost '/' does not support global qos")
    assert connection.is_closed


def test_prefetch_does_not_limit_auto_ack_consumers(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_qos(prefetch_count=1)
    inbox = Inbox()
    channel.basic_consume(queue, inbox, auto_ack=True)

    _publish(channel, queue, 5)

    wait_until(connection, lambda: len(inbox.deliveries) == 5, what="5 deliveries")


def test_messages_are_dispatched_round_robin_among_consumers(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    inboxes = [Inbox(), Inbox(), Inbox()]
    for inbox in inboxes:
        channel.basic_consume(queue, inbox, auto_ack=True)

    _publish(channel, queue, 9)
    wait_until(connection, lambda: sum(len(inbox.deliveries) for inbox in inboxes) == 9, what="9 deliveries")

    assert [inbox.bodies for inbox in inboxes] == [
        [b"1", b"4", b"7"],
        [b"2", b"5", b"8"],
        [b"3", b"6", b"9"],
    ]


def test_deleting_a_consumed_queue_notifies_the_consumer_with_basic_cancel(connection, channel):
    name = unique("cancel-notify")
    channel.queue_declare(name, exclusive=True)
    cancels = []
    channel.add_on_cancel_callback(lambda frame: cancels.append(frame.method))
    tag = channel.basic_consume(name, Inbox())

    connection.channel().queue_delete(name)
    wait_until(connection, lambda: cancels, what="basic.cancel from the broker")

    assert [method.consumer_tag for method in cancels] == [tag]
    assert channel.consumer_tags == []
    assert channel.is_open


def test_consume_generator_ends_when_broker_cancels_the_consumer(connection, channel):
    name = unique("cancel-notify")
    channel.queue_declare(name, exclusive=True)
    channel.basic_publish("", name, b"before delete")
    received = []

    for method, _, body in channel.consume(name, auto_ack=True, inactivity_timeout=5):
        assert method is not None, "no basic.cancel within 5 s"
        received.append(body)
        connection.channel().queue_delete(name)

    assert received == [b"before delete"]
    assert channel.is_open
