"""Looking into the broker from a test: vhosts, queues, exchanges, bindings and messages."""

from __future__ import annotations

import pika
import pytest

from amqpbroker.testing import BindingInfo, ExchangeInfo, QueueInfo

from .conftest import wait_until


def test_vhosts_include_the_test_s_own(amqp_broker, amqp_vhost):
    assert {"/", amqp_vhost} <= set(amqp_broker.vhosts())


def test_queues_with_their_ready_unacked_and_consumer_counts(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.queue_declare("work", durable=True, arguments={"x-max-length": 10})
    channel.queue_declare("scratch", exclusive=True, auto_delete=True)
    for body in (b"a", b"b", b"c"):
        channel.basic_publish("", "work", body)
    channel.basic_qos(prefetch_count=1)
    delivered = []
    channel.basic_consume("work", lambda ch, method, props, body: delivered.append(body))
    wait_until(lambda: channel.connection.process_data_events(time_limit=0) or delivered, "a delivery")

    assert amqp_broker.queues(amqp_vhost) == [
        QueueInfo("work", True, False, False, {"x-max-length": 10}, message_count=2, unacked_count=1,
                  consumer_count=1),
        QueueInfo("scratch", False, True, True, {}, message_count=0, unacked_count=0, consumer_count=0),
    ]
    queue = amqp_broker.queue("work", amqp_vhost)
    assert (queue.message_count, queue.unacked_count) == (2, 1)


def test_exchanges_include_the_predeclared_ones(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.exchange_declare("events", "topic", durable=True, arguments={"alternate-exchange": "unrouted"})

    exchanges = {exchange.name: exchange for exchange in amqp_broker.exchanges(amqp_vhost)}
    assert exchanges["events"] == ExchangeInfo(
        "events", "topic", durable=True, auto_delete=False, internal=False, arguments={"alternate-exchange": "unrouted"}
    )
    assert {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"} < set(exchanges)


def test_bindings_to_queues_and_to_exchanges(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.exchange_declare("events", "topic")
    channel.exchange_declare("audit", "fanout")
    channel.queue_declare("orders")
    channel.queue_bind("orders", "events", "order.*")
    channel.exchange_bind("audit", "events", "#")

    assert sorted(amqp_broker.bindings(amqp_vhost), key=lambda binding: binding.destination) == [
        BindingInfo("events", "audit", "exchange", "#", {}),
        BindingInfo("events", "orders", "queue", "order.*", {}),
    ]


def test_messages_are_peeked_in_delivery_order_and_stay_in_the_queue(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.queue_declare("inbox")
    channel.basic_publish("", "inbox", b"first", pika.BasicProperties(content_type="text/plain", headers={"n": 1}))
    channel.basic_publish("amq.direct", "unbound", b"nowhere")
    channel.queue_bind("inbox", "amq.direct", "inbox-key")
    channel.basic_publish("amq.direct", "inbox-key", b"second", pika.BasicProperties(priority=3))
    method, _, _ = channel.basic_get("inbox")
    channel.basic_nack(method.delivery_tag, requeue=True)
    channel.queue_declare("inbox", passive=True)  # a round trip: the broker has seen the nack

    first, second = amqp_broker.messages("inbox", amqp_vhost)
    assert (first.exchange, first.routing_key, first.body, first.redelivered) == ("", "inbox", b"first", True)
    assert (first.properties.content_type, first.properties.headers) == ("text/plain", {"n": 1})
    assert (second.exchange, second.routing_key, second.body, second.redelivered) == (
        "amq.direct", "inbox-key", b"second", False)
    assert second.properties.priority == 3
    assert amqp_broker.queue("inbox", amqp_vhost).message_count == 2


def test_persistent_messages_are_read_back_from_the_store(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.queue_declare("kept", durable=True)
    channel.confirm_delivery()
    # Confirmed means stored: the broker then keeps only the reference in memory.
    channel.basic_publish("", "kept", b"stored body", pika.BasicProperties(delivery_mode=2))

    [message] = amqp_broker.messages("kept", amqp_vhost)
    assert message.body == b"stored body"
    assert message.properties.delivery_mode == 2


def test_asking_for_a_missing_queue_or_vhost_is_a_lookup_error(amqp_broker, amqp_vhost):
    with pytest.raises(LookupError, match="no queue 'missing' in vhost"):
        amqp_broker.queue("missing", amqp_vhost)
    with pytest.raises(LookupError, match="no vhost 'missing'"):
        amqp_broker.queues("missing")
