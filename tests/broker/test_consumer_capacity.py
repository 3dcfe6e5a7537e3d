"""Consumer capacity: the share of time a queue could hand a message to a consumer at once,
RabbitMQ's `consumer_capacity` (and `consumer_utilisation`), on the broker's clock."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def capacity(broker: core.Broker, queue: str = "q") -> float:
    found = broker.vhosts["/"].queues[queue]
    return found.consumers.capacity(broker.timers.clock())


def one_waiting(peer) -> str:
    """Queue q with a prefetch-1 consumer holding one message while a second waits: its tag."""
    peer.declare("q")
    peer.qos(1)
    tag = peer.consume("q")
    peer.publish("", "q", b"first")
    peer.publish("", "q", b"second")
    return tag


def test_a_queue_without_consumers_has_no_capacity(broker, peer, clock) -> None:
    peer.declare("q")
    assert capacity(broker) == 0.0
    peer.publish("", "q", b"m")
    clock.advance(5)
    broker.sample_stats()
    assert capacity(broker) == 0.0


def test_consumers_that_take_every_message_at_once_are_at_full_capacity(broker, peer, clock) -> None:
    peer.declare("q")
    peer.consume("q", no_ack=True)
    assert capacity(broker) == 1.0
    for _ in range(10):
        peer.publish("", "q", b"m")
        clock.advance(1)
    assert capacity(broker) == 1.0
    broker.sample_stats()
    assert capacity(broker) == 1.0


def test_capacity_is_the_share_of_time_no_ready_message_waited_for_a_consumer(broker, peer, clock) -> None:
    peer.declare("q")
    peer.qos(1)
    peer.consume("q")
    peer.publish("", "q", b"first")
    clock.advance(2)
    # The consumer holds its one unacknowledged message: the next one waits.
    peer.publish("", "q", b"second")
    clock.advance(3)
    assert capacity(broker) == pytest.approx(2 / 5)
    peer.ack(1)
    clock.advance(5)
    # Blocked 3 s of 10; the second delivery holds the prefetch, but nothing waits for it.
    assert capacity(broker) == pytest.approx(7 / 10)


def test_the_last_sampled_interval_gives_the_capacity_until_the_next_sample(broker, peer, clock) -> None:
    one_waiting(peer)
    clock.advance(4)
    broker.sample_stats()
    assert capacity(broker) == 0.0
    clock.advance(1)
    peer.ack(1)
    peer.ack(2)
    clock.advance(4)
    assert capacity(broker) == 0.0
    broker.sample_stats()
    assert capacity(broker) == pytest.approx(4 / 5)
    clock.advance(5)
    broker.sample_stats()
    assert capacity(broker) == 1.0


def empty_by_get(peer, broker) -> None:
    assert peer.get("q", ch=2) == b"second"


def empty_by_purge(peer, broker) -> None:
    peer.handle(spec.QueuePurge(queue="q"), ch=2)


def empty_by_expiry(peer, broker) -> None:
    broker.expire()


@pytest.mark.parametrize(("empty", "ttl"), [(empty_by_get, None), (empty_by_purge, None), (empty_by_expiry, 1000)])
def test_a_queue_emptied_other_than_by_delivery_is_blocked_no_more(broker, peer, clock, empty, ttl) -> None:
    peer.declare("q", arguments={"x-message-ttl": ttl} if ttl else None)
    peer.qos(1)
    peer.consume("q")
    peer.publish("", "q", b"first")
    peer.publish("", "q", b"second")
    clock.advance(1)
    empty(peer, broker)
    assert broker.vhosts["/"].queues["q"].message_count == 0
    clock.advance(3)
    # Blocked the first second of four only.
    assert capacity(broker) == pytest.approx(3 / 4)
    broker.sample_stats()
    assert capacity(broker) == pytest.approx(3 / 4)


def test_capacity_starts_again_when_consumers_come_back(broker, peer, clock) -> None:
    tag = one_waiting(peer)
    clock.advance(5)
    assert capacity(broker) == 0.0
    peer.handle(spec.BasicCancel(consumer_tag=tag))
    assert capacity(broker) == 0.0
    clock.advance(5)
    peer.consume("q", ch=2, no_ack=True)
    clock.advance(1)
    assert capacity(broker) == 1.0
