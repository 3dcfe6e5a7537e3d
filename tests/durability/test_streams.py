"""A stream's log across a restart, over both stores: every message, its offset and its time."""

from __future__ import annotations

import datetime

import pytest

from amqpbroker.protocol import BasicProperties, spec

from .core_support import Client, Node

STREAM = {"x-queue-type": "stream"}


def read(client: Client, offset: object = "first", channel: int = 1) -> list[tuple[bytes, int]]:
    """What a new consumer starting at `offset` gets: (body, x-stream-offset) pairs, once what was
    published is committed, as the server's persister would have done (readers wait for that)."""
    client.connection.broker.commit()
    before = len(client.sink.properties)
    client.send(spec.BasicQos(prefetch_count=1000), channel)
    client.send(spec.BasicConsume(queue="s", arguments={"x-stream-offset": offset}), channel)
    bodies = [body for _, body in client.sink.contents(spec.BasicDeliver)][before:]
    offsets = [BasicProperties.decode(p).headers["x-stream-offset"] for p in client.sink.properties[before:]]
    return list(zip(bodies, offsets))


@pytest.mark.parametrize("clean", [True, False])
def test_the_log_survives_a_restart_transient_messages_too(node: Node, clean: bool) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="s", durable=True, arguments=STREAM))
    client.publish("", "s", b"persistent")
    client.publish("", "s", b"transient", persistent=False)
    assert read(client) == [(b"persistent", 0), (b"transient", 1)]
    client.send(spec.BasicAck(delivery_tag=2, multiple=True))
    node.broker.commit()

    node.restart(clean=clean)
    client = node.client()
    client.publish("", "s", b"after", persistent=False)
    assert read(client) == [(b"persistent", 0), (b"transient", 1), (b"after", 2)]


def test_a_timestamp_offset_reads_the_times_stored_with_the_log(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="s", durable=True, arguments=STREAM))
    client.publish("", "s", b"m")
    node.broker.commit()

    node.restart()
    client = node.client()
    assert read(client, datetime.datetime(2000, 1, 1), channel=1) == [(b"m", 0)]
    assert read(client, datetime.datetime(2100, 1, 1), channel=2) == []


def test_retention_goes_on_after_a_restart(node: Node) -> None:
    client = node.client()
    arguments = {**STREAM, "x-max-length-bytes": 1, "x-stream-max-segment-size-bytes": 1}
    client.send(spec.QueueDeclare(queue="s", durable=True, arguments=arguments))
    client.publish("", "s", b"0")
    client.publish("", "s", b"1")  # a segment each: the first is dropped
    node.broker.commit()

    node.restart()
    client = node.client()
    client.publish("", "s", b"2")
    node.broker.commit()
    assert read(client) == [(b"2", 2)]
    assert [(seq, message_id) for seq, message_id, _ in node.store.queue_entries("/", "s")] == [(2, 2)]


def test_a_deleted_stream_leaves_nothing_in_the_store(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="s", durable=True, arguments=STREAM))
    client.publish("", "s", b"m", persistent=False)
    node.broker.commit()
    client.send(spec.QueueDelete(queue="s"))

    broker = node.restart()
    assert "s" not in broker.vhosts["/"].queues
    assert list(node.store.queue_entries("/", "s")) == []
    assert node.store.max_message_id() == -1
