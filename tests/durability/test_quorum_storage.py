"""A quorum queue keeps every message in the store, persistent or not, as RabbitMQ's quorum queues
do: a transient message outlives a restart there (its delivery mode kept), and its confirm waits
for the store. A classic queue beside it keeps the same message in memory only."""

from __future__ import annotations

import pytest

from amqpbroker.protocol import BasicProperties, spec

from .core_support import Node, confirms


def declare(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="quorum", durable=True, arguments={"x-queue-type": "quorum"}))
    client.send(spec.QueueDeclare(queue="classic", durable=True))
    client.send(spec.ExchangeDeclare(exchange="both", type="fanout", durable=True))
    for queue in ("quorum", "classic"):
        client.send(spec.QueueBind(queue=queue, exchange="both"))


@pytest.mark.parametrize("clean", [True, False])
def test_a_transient_message_in_a_quorum_queue_outlives_a_restart(node: Node, clean: bool) -> None:
    declare(node)
    client = node.client()
    client.send(spec.ConfirmSelect())
    client.publish("both", "", b"transient", persistent=False)
    # Confirmed once the store has it, not before.
    assert confirms(client) == []
    node.broker.commit()
    client.connection.flush_confirms()
    assert confirms(client) == [("BasicAck", 1, False)]
    node.restart(clean=clean)
    again = node.client()
    assert again.get("classic") is None
    method, body = again.get("quorum")
    assert body == b"transient"
    assert BasicProperties.decode(again.sink.properties[-1]).delivery_mode == 1


def test_the_classic_queue_letting_go_of_it_leaves_the_quorum_queues_copy(node: Node) -> None:
    declare(node)
    client = node.client()
    client.publish("both", "", b"transient", persistent=False)
    node.broker.commit()
    method, _ = client.get("classic")
    client.send(spec.BasicAck(delivery_tag=method.delivery_tag))
    node.restart()
    assert node.client().get("quorum")[1] == b"transient"
