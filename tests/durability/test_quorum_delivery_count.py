"""A quorum queue's delivery counts outlive a restart, so its delivery limit is not given afresh by
one: counted returns are stored, and a delivery under way at a crash counts as a return, as it
does in RabbitMQ (its recovery returns what the consumers of the crashed node held)."""

from __future__ import annotations

import pika
import pytest

from amqpbroker.protocol import BasicProperties, spec

from .conftest import BrokerProcess
from .core_support import Client, Node
from .test_restart import sync


def declare(node: Node, *, limit: int | None = None, messages: int = 1) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="dlq", durable=True))
    arguments = {"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}
    if limit is not None:
        arguments["x-delivery-limit"] = limit
    client.send(spec.QueueDeclare(queue="q", durable=True, arguments=arguments))
    for i in range(messages):
        client.publish("", "q", b"m%d" % i)
    node.broker.commit()


def get(client: Client, queue: str = "q") -> tuple[spec.BasicGetOk, bytes, dict]:
    """basic.get: the method, the body and the headers of the next message."""
    got = client.get(queue)
    assert got is not None, f"{queue} is empty"
    method, body = got
    return method, body, BasicProperties.decode(client.sink.properties[-1]).headers or {}


def nack(node: Node, times: int) -> None:
    client = node.client()
    for _ in range(times):
        method, _, _ = get(client)
        client.send(spec.BasicNack(delivery_tag=method.delivery_tag, requeue=True))
    node.broker.commit()


@pytest.mark.parametrize("clean", [True, False])
def test_the_delivery_count_survives_a_restart(node: Node, clean: bool) -> None:
    declare(node)
    nack(node, 2)
    node.restart(clean=clean)
    method, body, headers = get(node.client())
    assert (body, method.redelivered, headers["x-delivery-count"]) == (b"m0", True, 2)


def test_the_delivery_limit_dead_letters_across_a_restart(node: Node) -> None:
    declare(node, limit=2)
    nack(node, 2)
    node.restart()
    client = node.client()
    method, _, headers = get(client)
    assert headers["x-delivery-count"] == 2
    client.send(spec.BasicNack(delivery_tag=method.delivery_tag, requeue=True))
    assert client.get("q") is None
    _, body, headers = get(client, "dlq")
    assert body == b"m0"
    assert [(death["queue"], death["reason"]) for death in headers["x-death"]] == [("q", "delivery_limit")]


def test_a_channel_closed_at_a_clean_restart_counts_its_unacked_delivery(node: Node) -> None:
    declare(node)
    consumer = node.client()
    get(consumer)
    node.broker.commit()
    consumer.close()  # as a graceful shutdown closes its clients
    node.restart()
    _, _, headers = get(node.client())
    assert headers["x-delivery-count"] == 1


@pytest.mark.parametrize("returned_before", [0, 2])
def test_a_delivery_under_way_at_a_crash_counts_as_a_return(node: Node, returned_before: int) -> None:
    declare(node, messages=2)
    nack(node, returned_before)
    _, body, headers = get(node.client())  # never acknowledged: the broker crashes first
    assert (body, headers["x-delivery-count"]) == (b"m0", returned_before)
    node.broker.commit()
    node.restart(clean=False)
    client = node.client()
    _, body, headers = get(client)
    assert (body, headers["x-delivery-count"]) == (b"m0", returned_before + 1)
    # A message the crash found waiting, never delivered, has had no delivery to count.
    _, body, headers = get(client)
    assert (body, headers["x-delivery-count"]) == (b"m1", 0)


def test_a_message_whose_deliveries_end_in_crashes_is_dead_lettered_past_the_limit(node: Node) -> None:
    declare(node, limit=1)
    for count in (0, 1):
        _, _, headers = get(node.client())
        assert headers["x-delivery-count"] == count
        node.broker.commit()
        node.restart(clean=False)
    # The second crash was its second return, one more than the limit allows.
    client = node.client()
    assert client.get("q") is None
    _, body, headers = get(client, "dlq")
    assert body == b"m0"
    assert [(death["queue"], death["reason"]) for death in headers["x-death"]] == [("q", "delivery_limit")]
    node.restart()  # the move was written: the message is in the dead-letter queue only
    client = node.client()
    assert client.get("q") is None
    assert get(client, "dlq")[1] == b"m0"


def test_a_broker_process_keeps_the_counts_through_a_kill_and_a_sigterm(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.queue_declare("q", durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_publish("", "q", b"m", pika.BasicProperties(delivery_mode=2))
    method, _, _ = channel.basic_get("q")
    channel.basic_nack(method.delivery_tag, requeue=True)
    _, properties, _ = channel.basic_get("q")  # under way when the broker is killed
    assert properties.headers == {"x-delivery-count": 1}
    sync(channel)
    broker_process.restart("kill")
    channel = broker_process.connect().channel()
    _, properties, _ = channel.basic_get("q")  # under way when the broker stops: its channel is closed
    assert properties.headers == {"x-delivery-count": 2}
    broker_process.restart("sigterm")
    channel = broker_process.connect().channel()
    method, properties, _ = channel.basic_get("q")
    assert (method.redelivered, properties.headers) == (True, {"x-delivery-count": 3})
