"""Dead-lettering between durable queues is durable: a persistent message is in the source queue or
in the dead-letter queue after any crash, never in neither, and its x-death record survives."""

from __future__ import annotations

import pytest

from amqpbroker.protocol import BasicProperties, spec

from .core_support import Node


def setup(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="dlq", durable=True))
    client.send(spec.QueueDeclare(queue="src", durable=True, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq",
    }))
    client.publish("", "src", b"m")
    node.broker.commit()


def reject(node: Node) -> None:
    client = node.client()
    method, _ = client.get("src")
    client.send(spec.BasicReject(delivery_tag=method.delivery_tag, requeue=False))


@pytest.mark.parametrize("committed", [False, True])
def test_a_crash_leaves_a_dead_lettered_message_in_exactly_one_queue(node: Node, committed: bool) -> None:
    setup(node)
    reject(node)
    if committed:
        node.broker.commit()
    broker = node.restart(clean=False)
    queues = broker.vhosts["/"].queues
    assert (queues["src"].message_count, queues["dlq"].message_count) == ((0, 1) if committed else (1, 0))
    client = node.client()
    method, body = client.get("dlq" if committed else "src")
    assert body == b"m"


def test_the_x_death_record_survives_a_restart(node: Node) -> None:
    setup(node)
    reject(node)
    node.restart()
    client = node.client()
    assert client.get("dlq") is not None
    headers = BasicProperties.decode(client.sink.properties[-1]).headers
    assert [(d["queue"], d["reason"], d["count"]) for d in headers["x-death"]] == [("src", "rejected", 1)]
