"""Direct reply-to: RPC replies through the `amq.rabbitmq.reply-to` pseudo-queue, without a queue."""

from __future__ import annotations

import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from .support import get_within, reply, unique

REPLY_TO = "amq.rabbitmq.reply-to"


def test_reply_reaches_the_requesting_channel(connect, channel) -> None:
    requests = unique("rpc")
    channel.queue_declare(requests)
    replies: list[tuple] = []
    tag = channel.basic_consume(REPLY_TO, lambda ch, m, p, body: replies.append((m, p, body)), auto_ack=True)
    channel.basic_publish("", requests, b"ping", pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c1"))

    server = connect().channel()
    method, properties, body = get_within(server, requests)
    assert properties.reply_to.startswith(REPLY_TO + ".")
    server.basic_publish("", properties.reply_to, b"pong", pika.BasicProperties(correlation_id="c1"))

    deadline = time.monotonic() + 5
    while not replies and time.monotonic() < deadline:
        channel.connection.process_data_events(time_limit=0.05)
    [(deliver, reply_properties, reply_body)] = replies
    assert (reply_body, reply_properties.correlation_id) == (b"pong", "c1")
    assert deliver.consumer_tag == tag and deliver.routing_key == properties.reply_to
    channel.queue_delete(requests)


def test_passive_declare_of_the_pseudo_queue_succeeds(channel) -> None:
    assert channel.queue_declare(REPLY_TO, passive=True).method.queue == REPLY_TO


@pytest.mark.parametrize(
    ("action", "text"),
    [
        (
            lambda ch: ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=False),
            "PRECONDITION_FAILED - reply consumer cannot acknowledge",
        ),
        (
            lambda ch: [ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True) for _ in range(2)],
            "PRECONDITION_FAILED - reply consumer already set",
        ),
        (
            lambda ch: (
                ch.basic_publish("", "anything", b"x", pika.BasicProperties(reply_to=REPLY_TO)),
                ch.queue_declare("", exclusive=True),
            ),
            "PRECONDITION_FAILED - fast reply consumer does not exist",
        ),
    ],
    ids=["manual-ack", "second-consumer", "no-consumer"],
)
def test_misuse_is_precondition_failed(channel, action, text) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        action(channel)
    assert reply(closed) == (406, text)
