"""Accounting of message bodies held in memory, and the alarm that blocks publishers."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec

from .conftest import Peer


def test_bodies_are_counted_once_while_queued_and_released_when_acked(broker, peer) -> None:
    peer.exchange("fan", "fanout")
    for name in ("a", "b"):
        peer.declare(name)
        peer.bind(name, "fan")
    peer.publish("fan", "", b"x" * 1000)
    assert broker.memory.used == 1000  # one body, whatever the number of queues
    for name in ("a", "b"):
        peer.handle(spec.BasicGet(queue=name, no_ack=True))
    assert broker.memory.used == 0


def test_purge_and_delete_release_memory(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"x" * 10)
    peer.publish("", "q", b"x" * 10)
    peer.handle(spec.QueuePurge(queue="q"))
    peer.publish("", "q", b"x" * 10)
    peer.handle(spec.QueueDelete(queue="q"))
    assert broker.memory.used == 0


def test_alarm_rises_at_the_limit_and_clears_below_it() -> None:
    broker = core.Broker(memory_limit=2500)
    changes: list[bool] = []
    broker.memory.on_alarm = changes.append
    peer = Peer(broker)
    peer.declare("q")
    for _ in range(3):
        peer.publish("", "q", b"x" * 1000)
    assert changes == [True] and broker.memory.alarm
    peer.handle(spec.BasicGet(queue="q", no_ack=True))
    assert changes == [True, False] and not broker.memory.alarm


@pytest.mark.parametrize(("limit", "counted_once_stored"), [(10_000, 500), (800, 0)])
def test_persistent_bodies_stay_counted_while_there_is_room_and_not_once_stored_past_half_the_limit(
    limit: int, counted_once_stored: int
) -> None:
    broker = core.Broker(memory_limit=limit)
    peer = Peer(broker)
    peer.declare("durable", durable=True)
    persistent = BasicProperties(delivery_mode=2).encode()
    peer.channel().publish(spec.BasicPublish(exchange="", routing_key="durable"), persistent, b"x" * 500)
    assert broker.memory.used == 500
    broker.commit()
    assert broker.memory.used == counted_once_stored
    peer.handle(spec.BasicGet(queue="durable", no_ack=True))
    assert broker.memory.used == 0


def test_every_copy_of_a_fanout_is_the_one_body_buffer_received(broker, peer) -> None:
    peer.exchange("fan", "fanout")
    consumer = Peer(broker)
    for name in ("a", "b", "c"):
        peer.declare(name)
        peer.bind(name, "fan")
        consumer.handle(spec.BasicConsume(queue=name, no_ack=True))
    body = bytes(range(256)) * 1024
    peer.publish("fan", "", body)
    delivered = consumer.sink.bodies()
    assert len(delivered) == 3
    assert all(copy is body for copy in delivered), "a copy of the body was made"
    assert broker.memory.used == 0
