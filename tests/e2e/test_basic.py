"""basic.publish, get, ack, nack, reject, recover and basic.return; where
requeued and unacknowledged messages go."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from .support import get_within, reply, round_trip, unique, wait_until


def _publish(channel, queue, count, prefix=""):
    for number in range(1, count + 1):
        channel.basic_publish("", queue, f"{prefix}{number}".encode())


def _drain(channel, queue):
    """(body, redelivered) of every ready message, acknowledged on the way."""
    messages = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return messages
        messages.append((body, method.redelivered))


def test_get_returns_message_and_count_of_remaining(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 3)

    method, _, body = channel.basic_get(queue, auto_ack=True)

    assert isinstance(method, pika.spec.Basic.GetOk)
    assert (body, method.message_count, method.redelivered) == (b"1", 2, False)
    assert (method.exchange, method.routing_key, method.delivery_tag) == ("", queue, 1)


def test_get_on_empty_queue_is_get_empty(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue

    assert channel.basic_get(queue) == (None, None, None)


def test_get_from_missing_queue_is_not_found(channel):
    name = unique("missing")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_get(name)

    assert reply(closed) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_delivery_tags_count_up_per_channel(connection):
    first, second = connection.channel(), connection.channel()
    queue = first.queue_declare("", exclusive=True).method.queue
    _publish(first, queue, 4)

    tags = [first.basic_get(queue)[0].delivery_tag, first.basic_get(queue)[0].delivery_tag]
    tags += [second.basic_get(queue)[0].delivery_tag, second.basic_get(queue)[0].delivery_tag]

    assert tags == [1, 2, 1, 2]


def test_ack_removes_message_for_good(connection):
    channel = connection.channel()
    name = unique("acked")
    channel.queue_declare(name, exclusive=True)
    _publish(channel, name, 1)

    channel.basic_ack(channel.basic_get(name)[0].delivery_tag)
    channel.close()

    assert _drain(connection.channel(), name) == []


def test_ack_multiple_acknowledges_everything_up_to_the_tag(connection):
    channel = connection.channel()
    name = unique("multiple")
    channel.queue_declare(name, exclusive=True)
    _publish(channel, name, 3)
    tags = [channel.basic_get(name)[0].delivery_tag for _ in range(3)]

    channel.basic_ack(tags[1], multiple=True)
    channel.close()

    assert _drain(connection.channel(), name) == [(b"3", True)]


def test_ack_multiple_with_tag_zero_acknowledges_all_outstanding(connection):
    channel = connection.channel()
    name = unique("all")
    channel.queue_declare(name, exclusive=True)
    _publish(channel, name, 3)
    for _ in range(3):
        channel.basic_get(name)

    channel.basic_ack(0, multiple=True)
    channel.close()

    assert _drain(connection.channel(), name) == []


def test_ack_of_unknown_delivery_tag_is_precondition_failed(channel):
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_ack(99)
        round_trip(channel)

    assert reply(closed) == (406, "PRECONDITION_FAILED - unknown delivery tag 99")


def test_double_ack_is_precondition_failed(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 1)
    tag = channel.basic_get(queue)[0].delivery_tag

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_ack(tag)
        channel.basic_ack(tag)
        round_trip(channel)

    assert reply(closed) == (406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")


@pytest.mark.parametrize(
    "settle",
    [
        pytest.param(lambda channel: channel.basic_reject(99), id="reject"),
        pytest.param(lambda channel: channel.basic_nack(99), id="nack"),
    ],
)
def test_reject_or_nack_of_unknown_delivery_tag_is_precondition_failed(channel, settle):
    with pytest.raises(ChannelClosedByBroker) as closed:
        settle(channel)
        round_trip(channel)

    assert reply(closed) == (406, "PRECONDITION_FAILED - unknown delivery tag 99")


def test_ack_of_auto_acked_delivery_is_precondition_failed(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 1)
    tag = channel.basic_get(queue, auto_ack=True)[0].delivery_tag

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_ack(tag)
        round_trip(channel)

    assert reply(closed) == (406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")


def test_reject_with_requeue_redelivers(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 1)

    channel.basic_reject(channel.basic_get(queue)[0].delivery_tag, requeue=True)

    assert _drain(channel, queue) == [(b"1", True)]


def test_reject_without_requeue_discards(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 1)

    channel.basic_reject(channel.basic_get(queue)[0].delivery_tag, requeue=False)

    assert _drain(channel, queue) == []


def test_nack_multiple_with_requeue_redelivers_in_order(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 3)
    tags = [channel.basic_get(queue)[0].delivery_tag for _ in range(3)]

    channel.basic_nack(tags[-1], multiple=True, requeue=True)

    assert _drain(channel, queue) == [(b"1", True), (b"2", True), (b"3", True)]


def test_nack_multiple_without_requeue_discards_up_to_the_tag(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 3)
    tags = [channel.basic_get(queue)[0].delivery_tag for _ in range(3)]

    channel.basic_nack(tags[1], multiple=True, requeue=False)
    channel.basic_nack(tags[2], requeue=True)

    assert _drain(channel, queue) == [(b"3", True)]


def test_requeued_messages_return_to_their_original_position(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 5)
    tags = [channel.basic_get(queue)[0].delivery_tag for _ in range(5)]

    channel.basic_nack(tags[3], requeue=True)
    channel.basic_nack(tags[1], requeue=True)
    channel.basic_publish("", queue, b"6")
    channel.basic_ack(tags[4])
    channel.basic_ack(tags[2])
    channel.basic_ack(tags[0])

    assert _drain(channel, queue) == [(b"2", True), (b"4", True), (b"6", False)]


def test_recover_with_requeue_redelivers_unacked_messages(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    _publish(channel, queue, 3)
    for _ in range(3):
        channel.basic_get(queue)

    channel.basic_recover(requeue=True)

    assert _drain(channel, queue) == [(b"1", True), (b"2", True), (b"3", True)]


def test_recover_redelivers_to_the_consumer(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    deliveries = []
    channel.basic_consume(queue, lambda ch, method, properties, body: deliveries.append((body, method.redelivered)))
    _publish(channel, queue, 2)
    wait_until(connection, lambda: len(deliveries) == 2, what="2 deliveries")

    channel.basic_recover(requeue=True)
    wait_until(connection, lambda: len(deliveries) == 4, what="2 redeliveries")

    assert deliveries == [(b"1", False), (b"2", False), (b"1", True), (b"2", True)]


def test_unacked_messages_of_a_closed_channel_are_requeued_in_order(connection):
    name = unique("requeue-on-close")
    setup = connection.channel()
    setup.queue_declare(name, exclusive=True)
    _publish(setup, name, 5)
    setup.basic_publish("", name, b"ready")
    consuming = connection.channel()
    for _ in range(5):
        consuming.basic_get(name)

    consuming.close()

    assert _drain(connection.channel(), name) == [
        (b"1", True),
        (b"2", True),
        (b"3", True),
        (b"4", True),
        (b"5", True),
        (b"ready", False),
    ]


def test_unacked_consumer_deliveries_of_a_closed_connection_are_requeued_in_order(connect, cleanup):
    name = cleanup.queue(unique("requeue-on-close"))
    observer = connect().channel()
    observer.queue_declare(name)
    _publish(observer, name, 4)
    consumer_connection = connect()
    consuming = consumer_connection.channel()
    received = []
    consuming.basic_consume(name, lambda ch, method, properties, body: received.append(body))
    wait_until(consumer_connection, lambda: len(received) == 4, what="4 deliveries")

    consumer_connection.close()

    first = get_within(observer, name, auto_ack=True)
    assert (first[2], first[0].redelivered) == (b"1", True)
    assert _drain(observer, name) == [(b"2", True), (b"3", True), (b"4", True)]


def test_mandatory_unroutable_message_is_returned_with_312_no_route(connection, channel):
    returned = []
    channel.add_on_return_callback(lambda ch, method, properties, body: returned.append((method, properties, body)))
    routing_key = unique("nowhere")

    channel.basic_publish(
        "amq.direct",
        routing_key,
        b"come back",
        pika.BasicProperties(message_id="m-1", headers={"kept": 1}),
        mandatory=True,
    )
    wait_until(connection, lambda: returned, what="basic.return")

    method, properties, body = returned[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert (method.exchange, method.routing_key) == ("amq.direct", routing_key)
    assert (body, properties.message_id, properties.headers) == (b"come back", "m-1", {"kept": 1})


def test_mandatory_routable_message_is_not_returned(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    returned = []
    channel.add_on_return_callback(lambda *message: returned.append(message))

    channel.basic_publish("", queue, b"delivered", mandatory=True)
    round_trip(channel)
    connection.process_data_events(time_limit=0.1)

    assert returned == []
    assert channel.basic_get(queue, auto_ack=True)[2] == b"delivered"


def test_unroutable_message_without_mandatory_is_dropped_silently(connection, channel):
    returned = []
    channel.add_on_return_callback(lambda *message: returned.append(message))

    channel.basic_publish("amq.direct", unique("nowhere"), b"gone")
    round_trip(channel)
    connection.process_data_events(time_limit=0.1)

    assert returned == []
    assert channel.is_open


def test_user_id_must_match_the_authenticated_user(amqp_params, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_publish("", queue, b"forged", pika.BasicProperties(user_id="mallory"))
        round_trip(channel)

    assert reply(closed) == (
        406,
        "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was "
        f"'{amqp_params.credentials.username}'",
    )
