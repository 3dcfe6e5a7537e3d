"""Priority queues (`x-max-priority`): higher priority first, FIFO within a priority."""

from __future__ import annotations

import pytest

from amqpbroker.protocol import spec

from .test_ttl import queue


def publish_all(peer, messages: list[tuple[bytes, int | None]]) -> None:
    for body, priority in messages:
        peer.publish("", "q", body, priority=priority)


def drain(peer) -> list[bytes]:
    found = []
    while (body := peer.get("q")) is not None:
        found.append(body)
    return found


def test_higher_priority_first_fifo_within_a_priority(peer) -> None:
    peer.declare("q", arguments={"x-max-priority": 5})
    publish_all(peer, [(b"p0", 0), (b"p5a", 5), (b"p1", 1), (b"none", None), (b"p5b", 5), (b"p9", 9)])
    # 9 is above the maximum and counts as 5; no priority counts as 0.
    assert drain(peer) == [b"p5a", b"p5b", b"p9", b"p1", b"p0", b"none"]


def test_consumers_get_the_highest_priority_first(peer) -> None:
    peer.declare("q", arguments={"x-max-priority": 10})
    publish_all(peer, [(b"low", 1), (b"high", 10), (b"mid", 4)])
    peer.consume("q")
    assert peer.sink.bodies() == [b"high", b"mid", b"low"]


def test_a_requeued_message_keeps_its_place_within_its_priority(peer) -> None:
    peer.declare("q", arguments={"x-max-priority": 2})
    publish_all(peer, [(b"a1", 1), (b"b1", 1), (b"c2", 2), (b"d1", 1)])
    assert peer.get("q", no_ack=False) == b"c2"
    assert peer.get("q", no_ack=False) == b"a1"
    assert peer.get("q", no_ack=False) == b"b1"
    publish_all(peer, [(b"e1", 1)])
    peer.handle(spec.BasicRecover(requeue=True))
    assert drain(peer) == [b"c2", b"a1", b"b1", b"d1", b"e1"]


def test_without_x_max_priority_the_priority_is_ignored(peer) -> None:
    peer.declare("q")
    publish_all(peer, [(b"low", 0), (b"high", 9)])
    assert drain(peer) == [b"low", b"high"]


def test_message_count_counts_every_priority(peer, broker) -> None:
    peer.declare("q", arguments={"x-max-priority": 3})
    publish_all(peer, [(b"a", 0), (b"b", 3), (b"c", 2)])
    assert queue(broker, "q").message_count == 3
    peer.handle(spec.QueuePurge(queue="q"))
    assert queue(broker, "q").message_count == 0
    assert drain(peer) == []


def test_messages_expire_from_the_head_of_the_highest_priority(peer, broker, clock) -> None:
    peer.declare("q", arguments={"x-max-priority": 2})
    peer.publish("", "q", b"high-lives", priority=2, expiration="10000")
    peer.publish("", "q", b"low-expires", priority=1, expiration="100")
    clock.advance(0.1)
    broker.expire()
    # As in RabbitMQ: the expired message waits behind the live one of a higher priority...
    assert queue(broker, "q").message_count == 2
    # ... and is never delivered.
    assert drain(peer) == [b"high-lives"]


def test_drop_head_drops_the_message_delivered_next(peer, broker) -> None:
    peer.declare("q", arguments={"x-max-priority": 2, "x-max-length": 2})
    publish_all(peer, [(b"low", 0), (b"high", 2), (b"mid", 1)])
    assert drain(peer) == [b"mid", b"low"]


@pytest.mark.parametrize("max_priority", [1, 255])
def test_the_range_of_priorities(peer, max_priority) -> None:
    peer.declare("q", arguments={"x-max-priority": max_priority})
    publish_all(peer, [(b"zero", 0), (b"max", max_priority), (b"over", 255)])
    assert drain(peer) == [b"max", b"over", b"zero"]
