"""Publisher confirms: confirm.select, acks (single and multiple), basic.return
ahead of the ack for unroutable mandatory messages, and tx/confirm exclusion."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from .asyncclient import ADAPTERS, run_scenario
from .support import reply, unique


def test_confirmed_publishes_return_without_error(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.confirm_delivery()

    for number in range(10):
        channel.basic_publish("", queue, str(number).encode())

    assert channel.queue_declare(queue, passive=True).method.message_count == 10


def test_persistent_message_to_durable_queue_is_confirmed(channel, cleanup):
    queue = cleanup.queue(unique("durable"))
    channel.queue_declare(queue, durable=True)
    channel.confirm_delivery()

    channel.basic_publish("", queue, b"on disk", pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))

    method, properties, body = channel.basic_get(queue, auto_ack=True)
    assert (body, properties.delivery_mode) == (b"on disk", 2)


def test_unroutable_message_is_confirmed_too(channel):
    channel.confirm_delivery()

    channel.basic_publish("amq.direct", unique("nowhere"), b"dropped but confirmed")

    assert channel.is_open


def test_mandatory_unroutable_publish_raises_unroutable_error_in_confirm_mode(channel):
    channel.confirm_delivery()
    routing_key = unique("nowhere")

    with pytest.raises(UnroutableError) as unroutable:
        channel.basic_publish("amq.direct", routing_key, b"come back", mandatory=True)

    [returned] = unroutable.value.messages
    assert (returned.method.reply_code, returned.method.reply_text) == (312, "NO_ROUTE")
    assert (returned.method.exchange, returned.method.routing_key, returned.body) == (
        "amq.direct",
        routing_key,
        b"come back",
    )
    assert channel.is_open


def test_confirm_select_on_transactional_channel_is_precondition_failed(channel):
    channel.tx_select()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.confirm_delivery()

    assert reply(closed) == (
        406,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
    )


def test_tx_select_on_confirm_channel_is_precondition_failed(channel):
    channel.confirm_delivery()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.tx_select()

    assert reply(closed) == (
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_outstanding_publishes_are_each_confirmed_exactly_once(amqp_params, adapter):
    count = 100
    acks: list[tuple[str, int, bool]] = []

    def scenario(channel, finish):
        unconfirmed = set(range(1, count + 1))

        def on_confirm(frame):
            method = frame.method
            acks.append((method.NAME, method.delivery_tag, method.multiple))
            if method.multiple:
                unconfirmed.difference_update(range(1, method.delivery_tag + 1))
            else:
                unconfirmed.discard(method.delivery_tag)
            if not unconfirmed:
                # Linger so that a duplicate confirm would be seen too.
                channel.connection.ioloop.call_later(0.2, finish)

        def on_queue(frame):
            for number in range(count):
                channel.basic_publish("", frame.method.queue, str(number).encode())

        def on_select_ok(_frame):
            channel.queue_declare("", exclusive=True, callback=on_queue)

        channel.confirm_delivery(ack_nack_callback=on_confirm, callback=on_select_ok)

    run_scenario(amqp_params, adapter, scenario)

    outstanding = set(range(1, count + 1))
    for name, delivery_tag, multiple in acks:
        assert name == "Basic.Ack"
        assert delivery_tag in outstanding, f"delivery tag {delivery_tag} confirmed twice"
        covered = {tag for tag in outstanding if tag <= delivery_tag} if multiple else {delivery_tag}
        outstanding -= covered
    assert outstanding == set()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_basic_return_arrives_before_the_ack_of_an_unroutable_mandatory_message(amqp_params, adapter):
    events: list[tuple] = []

    def scenario(channel, finish):
        def on_return(_channel, method, properties, body):
            events.append(("return", method.reply_code, body))

        def on_confirm(frame):
            events.append(("ack" if frame.method.NAME == "Basic.Ack" else "nack", frame.method.delivery_tag))
            finish()

        def on_select_ok(_frame):
            channel.basic_publish("amq.direct", unique("nowhere"), b"unroutable", mandatory=True)

        channel.add_on_return_callback(on_return)
        channel.confirm_delivery(ack_nack_callback=on_confirm, callback=on_select_ok)

    run_scenario(amqp_params, adapter, scenario)

    assert events == [("return", 312, b"unroutable"), ("ack", 1)]
