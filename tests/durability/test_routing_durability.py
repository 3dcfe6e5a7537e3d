"""A persistent message routed to several durable queues is stored for every queue that keeps it,
whatever the queues before it did with their copies."""

from __future__ import annotations

import pytest

from amqpbroker.protocol import spec

from .core_support import Node


@pytest.mark.parametrize("first", ["no-ack consumer", "full reject-publish queue"])
def test_a_durable_queue_dropping_its_copy_at_once_does_not_unstore_the_others(node: Node, first: str) -> None:
    client = node.client()
    client.send(spec.ExchangeDeclare(exchange="fan", type="fanout", durable=True))
    arguments = {"x-max-length": 0, "x-overflow": "reject-publish"} if first.startswith("full") else {}
    client.send(spec.QueueDeclare(queue="a", durable=True, arguments=arguments))
    client.send(spec.QueueDeclare(queue="b", durable=True))
    client.send(spec.QueueBind(queue="a", exchange="fan"))
    client.send(spec.QueueBind(queue="b", exchange="fan"))
    if first == "no-ack consumer":
        node.client().send(spec.BasicConsume(queue="a", consumer_tag="c", no_ack=True))
    client.publish("fan", "", b"kept by b")
    node.broker.commit()
    node.restart()
    assert node.client().drain("b") == [(b"kept by b", False)]
