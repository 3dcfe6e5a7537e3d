"""Dead-lettering with pika: rejected messages and quorum delivery limits, with the x-death record
RabbitMQ writes. Runs against RabbitMQ too (AMQP_TEST_URL). Expiry and length limits, the other
reasons, are in test_queue_features.py."""

from __future__ import annotations

import datetime

import pika

from .support import get_within, unique


def dead_letter_pair(channel, cleanup, **source_arguments):
    source, dead = cleanup.queue(unique("dl-src")), cleanup.queue(unique("dl-dlq"))
    channel.queue_declare(dead)
    arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead, **source_arguments}
    channel.queue_declare(source, durable=arguments.get("x-queue-type") == "quorum", arguments=arguments)
    return source, dead


def test_a_rejected_message_is_dead_lettered_with_its_death_recorded(channel, cleanup):
    exchange = cleanup.exchange(unique("dlx"))
    source, dead = cleanup.queue(unique("dl-src")), cleanup.queue(unique("dl-dlq"))
    channel.exchange_declare(exchange, "fanout")
    channel.queue_declare(dead)
    channel.queue_bind(dead, exchange)
    channel.queue_declare(source, arguments={"x-dead-letter-exchange": exchange})
    channel.basic_publish(
        "", source, b"body", pika.BasicProperties(expiration="60000", headers={"CC": ["cc-key"], "mine": 5})
    )
    method, _, _ = get_within(channel, source)
    channel.basic_reject(method.delivery_tag, requeue=False)

    method, properties, body = get_within(channel, dead, auto_ack=True)
    assert (method.exchange, method.routing_key, body) == (exchange, source, b"body")
    assert properties.expiration is None
    headers = dict(properties.headers)
    [death] = headers.pop("x-death")
    assert headers == {
        "CC": ["cc-key"],
        "mine": 5,
        "x-first-death-exchange": "",
        "x-first-death-queue": source,
        "x-first-death-reason": "rejected",
    }
    assert list(death) == ["count", "reason", "queue", "time", "exchange", "routing-keys", "original-expiration"]
    assert isinstance(death["time"], datetime.datetime)
    assert {k: v for k, v in death.items() if k != "time"} == {
        "count": 1,
        "reason": "rejected",
        "queue": source,
        "exchange": "",
        "routing-keys": [source, "cc-key"],
        "original-expiration": "60000",
    }


def test_nack_without_requeue_dead_letters_and_a_second_death_counts_up(channel, cleanup):
    source, dead = dead_letter_pair(channel, cleanup)
    channel.basic_publish("", source, b"m")
    method, _, _ = get_within(channel, source)
    channel.basic_nack(method.delivery_tag, requeue=False)
    method, properties, body = get_within(channel, dead, auto_ack=True)
    assert method.routing_key == dead
    channel.basic_publish("", source, body, pika.BasicProperties(headers=properties.headers))
    method, _, _ = get_within(channel, source)
    channel.basic_nack(method.delivery_tag, requeue=False)
    _, properties, _ = get_within(channel, dead, auto_ack=True)
    [death] = properties.headers["x-death"]
    assert (death["count"], death["queue"], death["reason"]) == (2, source, "rejected")
    assert list(death) == sorted(death)


def test_requeue_does_not_dead_letter(channel, cleanup):
    source, dead = dead_letter_pair(channel, cleanup)
    channel.basic_publish("", source, b"m")
    method, _, _ = get_within(channel, source)
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, _ = get_within(channel, source)
    assert method.redelivered
    channel.basic_ack(method.delivery_tag)
    assert channel.queue_declare(dead, passive=True).method.message_count == 0


def test_a_quorum_queue_dead_letters_a_message_returned_past_its_delivery_limit(channel, cleanup):
    source, dead = dead_letter_pair(channel, cleanup, **{"x-queue-type": "quorum", "x-delivery-limit": 1})
    channel.basic_publish("", source, b"m", pika.BasicProperties(headers={"h": 1}))
    seen = []
    for _ in range(2):
        method, properties, _ = get_within(channel, source)
        seen.append((method.redelivered, properties.headers))
        channel.basic_nack(method.delivery_tag, requeue=True)
    assert seen == [(False, {"h": 1, "x-delivery-count": 0}), (True, {"h": 1, "x-delivery-count": 1})]
    method, properties, _ = get_within(channel, dead, auto_ack=True)
    assert "x-delivery-count" not in properties.headers
    [death] = properties.headers["x-death"]
    assert (death["queue"], death["reason"], death["count"]) == (source, "delivery_limit", 1)
